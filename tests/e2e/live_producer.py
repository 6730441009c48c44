"""A live TTS producer for the end-to-end tests: one stream created with `POST /v1/live`,
then raw PCM (s16le mono) pushed in real time from a thread, one chunk every
`chunk_seconds` paced by the wall clock (`POST /v1/live/{id}/chunks?seq=N`), with an
optional pause (nothing sent for `pause` seconds after `pause_at` seconds of audio), then
`POST /v1/live/{id}/end` at t0 + `seconds` + `pause`.

Shared by test_live_clients.py, test_player_live.py and test_private_playback.py.
"""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LiveProducer:
    """One live stream: created at once, then pushed in real time from a thread."""

    base: str  # the origin, http://host:port
    asset_id: str
    pcm: bytes  # s16le mono at `rate`, at least `seconds` of it
    rate: int
    seconds: float  # of audio pushed
    title: str | None = None
    access: str | None = None  # "private" for a private stream
    key: str | None = None  # the API key for the write endpoints, when the origin has some
    pause_at: float = math.inf  # seconds of audio after which the producer pauses ...
    pause: float = 0.0  # ... for this long (the origin fills in silence)
    chunk_seconds: float = 0.2
    created: dict[str, Any] = field(default_factory=dict)
    sealed: dict[str, Any] = field(default_factory=dict)
    late: list[float] = field(default_factory=list)  # seconds each chunk went out late
    rtt: list[float] = field(default_factory=list)  # seconds each chunk's POST took
    ended_at: float = 0.0  # wall clock of the end request
    errors: list[str] = field(default_factory=list)
    thread: threading.Thread | None = None

    @property
    def wall_seconds(self) -> float:
        """From the first chunk to the end request."""
        return self.seconds + (self.pause if self.pause_at < self.seconds else 0.0)

    def _conn(self) -> http.client.HTTPConnection:
        parts = urllib.parse.urlsplit(self.base)
        return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)

    def _post(self, conn: http.client.HTTPConnection, path: str, body: bytes,
              ctype: str) -> tuple[int, bytes]:
        headers = {"Content-Type": ctype}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        conn.request("POST", path, body=body, headers=headers)
        res = conn.getresponse()
        return res.status, res.read()

    def create(self) -> dict[str, Any]:
        """`POST /v1/live`; the ASSET it answered."""
        spec: dict[str, Any] = {"id": self.asset_id, "title": self.title or f"live {self.asset_id}",
                                "format": {"codec": "pcm_s16le", "sample_rate": self.rate,
                                           "channels": 1}}
        if self.access:
            spec["access"] = self.access
        conn = self._conn()
        try:
            status, data = self._post(conn, "/v1/live", json.dumps(spec).encode(),
                                      "application/json")
        finally:
            conn.close()
        assert status == 201, f"POST /v1/live {self.asset_id}: {status} {data[:300]!r}"
        self.created = json.loads(data)
        return self.created

    def start(self, t0: float) -> None:
        """Push from a thread, the first chunk at wall clock `t0`."""
        self.thread = threading.Thread(target=self._push, args=(t0,), daemon=True,
                                       name=f"producer-{self.asset_id}")
        self.thread.start()

    def _push(self, t0: float) -> None:
        chunk_bytes = int(self.rate * self.chunk_seconds) * 2
        chunks = int(round(self.seconds / self.chunk_seconds))
        first = int(round(self.pause_at / self.chunk_seconds)) if self.pause_at < self.seconds else chunks
        conn = self._conn()
        try:
            for seq in range(chunks):
                # wall-clock pace; the chunks after the pause go out `pause` seconds later
                due = t0 + seq * self.chunk_seconds + (self.pause if seq >= first else 0.0)
                time.sleep(max(0.0, due - time.time()))
                sent = time.time()
                self.late.append(sent - due)
                status, body = self._post(conn, f"/v1/live/{self.asset_id}/chunks?seq={seq}",
                                          self.pcm[seq * chunk_bytes:(seq + 1) * chunk_bytes],
                                          "application/octet-stream")
                self.rtt.append(time.time() - sent)
                if status >= 300:
                    self.errors.append(f"chunk {seq}: {status} {body[:200]!r}")
                    return
            time.sleep(max(0.0, t0 + self.wall_seconds - time.time()))
            self.ended_at = time.time()
            status, body = self._post(conn, f"/v1/live/{self.asset_id}/end", b"",
                                      "application/json")
            if status != 200:
                self.errors.append(f"end: {status} {body[:300]!r}")
            else:
                self.sealed = json.loads(body)
        except Exception as e:  # noqa: BLE001 - reported by the tests
            self.errors.append(f"{type(e).__name__}: {e}")
        finally:
            conn.close()

    def join(self) -> None:
        assert self.thread is not None
        self.thread.join(timeout=self.wall_seconds + 30)
