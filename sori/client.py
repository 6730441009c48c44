"""An asyncio client of the origin's live ingest (CONTRACT.md §4, `/v1/live`), for TTS pipelines.

    async with LiveClient("http://127.0.0.1:8080", asset_id="talk-1", title="Talk",
                          format={"codec": "pcm_s16le", "sample_rate": 24000, "channels": 1},
                          api_key=None) as live:
        await live.send(pcm)                  # POST /v1/live/talk-1/chunks?seq=0, 1, 2, ...
        record = await live.end()             # POST /v1/live/talk-1/end: the sealed ASSET

With `transcript=True` the stream carries text (issue 14): `send(pcm, text="Hello.")` says
what that chunk's audio speaks (header X-Sori-Text), `send(pcm, cues=[{"text", "start",
"end"}])` sends cues timed in seconds of the audio sent so far (an X-Sori-Cues header per
cue); the
origin publishes them as live captions and seals them into transcript.vtt.

Entering creates the live asset (`create=False` attaches to one that exists, from `seq`).
A block left normally without `end()` ends the stream. A block left by an exception (or a
cancellation) leaves the stream open: the origin seals it once its producer has been silent
past its timeout, and meanwhile a restarted producer may resume it with
`LiveClient(..., create=False, seq=live.seq)`; ending it here would seal a cut-short asset
and, after a network failure, only fail again.

`send()` retries the same `seq` after a network error, a timeout or a 5xx (exponential
backoff): the origin acknowledges a repeated seq without appending it again, so a chunk whose
answer was lost is never doubled. `live.seq` is the next seq to send; a chunk counts as sent
only once acknowledged. Only aiohttp and the standard library are used.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp

MAX_CHUNK_BYTES = 8 * 1024 * 1024  # the origin answers 413 above this
# The raw-PCM rates the origin accepts (packager/live/formats.py PCM_RATES; a test keeps
# the two equal without this module importing the packager).
PCM_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
TEXT_HEADER = "X-Sori-Text"  # origin/live/ingest.py: a chunk's text, percent-encoded UTF-8
CUES_HEADER = "X-Sori-Cues"  # ... cues timed on the stream's audio, JSON (one header per cue)
Json = dict[str, Any]


class LiveError(Exception):
    """The origin refused a request (`status`, its `{"error"}` message and body) or could not
    be reached (`status` None) after every retry."""

    def __init__(self, message: str, status: int | None = None, body: Json | None = None):
        super().__init__(message)
        self.status = status
        self.body = body or {}

    @property
    def expected(self) -> int | None:
        """With a 409 gap: the seq the origin expects next."""
        value = self.body.get("expected")
        return value if isinstance(value, int) else None


@dataclass(frozen=True)
class PcmFormat:
    """Raw signed 16-bit little-endian PCM, interleaved: sizes and times of its bytes."""

    sample_rate: int
    channels: int

    @property
    def frame_bytes(self) -> int:
        return 2 * self.channels

    @property
    def bytes_per_second(self) -> int:
        return self.sample_rate * self.frame_bytes

    def chunk_bytes(self, chunk_ms: float) -> int:
        """Bytes of `chunk_ms` of audio, whole frames, at least one frame."""
        return max(1, round(self.sample_rate * chunk_ms / 1000)) * self.frame_bytes

    def seconds(self, nbytes: int) -> float:
        """Media time of `nbytes` of audio."""
        return nbytes / self.bytes_per_second

    def as_format(self) -> Json:
        """The `format` object of POST /v1/live."""
        return {"codec": "pcm_s16le", "sample_rate": self.sample_rate, "channels": self.channels}


def pcm_rate_for(source_rate: int) -> int:
    """The rate to send a source of `source_rate` Hz at: itself when the origin takes it, else
    the nearest accepted rate above it (48 kHz for anything higher)."""
    return next((r for r in PCM_RATES if r >= source_rate), PCM_RATES[-1])


class Pacer:
    """Real-time pacing: a chunk starting at media time `t` is due `t` seconds after the first
    chunk was sent (not after the previous one, so send times never drift)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._start: float | None = None

    def delay(self, media_time: float) -> float:
        """Seconds to wait before sending the chunk that starts at `media_time`."""
        now = self._clock()
        if self._start is None:
            self._start = now - media_time
        return max(0.0, self._start + media_time - now)

    async def wait(self, media_time: float) -> None:
        delay = self.delay(media_time)
        if delay > 0:
            await asyncio.sleep(delay)


class LiveClient:
    """One live stream on an origin; use as `async with`. See the module docstring."""

    def __init__(self, base_url: str, asset_id: str | None = None, *, title: str | None = None,
                 format: Json | None = None, api_key: str | None = None, create: bool = True,
                 access: str | None = None, transcript: bool = False,
                 seq: int = 0, session: aiohttp.ClientSession | None = None,
                 attempts: int = 6, backoff: float = 0.2, timeout: float = 30.0,
                 seal_timeout: float = 300.0) -> None:
        if not create and not asset_id:
            raise ValueError("attaching to a stream (create=False) needs its asset_id")
        self.base_url = base_url.rstrip("/")
        self.asset_id = asset_id
        self.asset: Json = {}  # the record from create (or from GET when attaching)
        self.record: Json | None = None  # the record end() returned
        self.seq = seq  # the next seq to send
        self.bytes_sent = 0
        self._create, self._title, self._format = create, title, format
        self._access = access  # "public" / "private"; None: the origin's default (public)
        self._transcript = transcript  # the stream carries text (send(text=, cues=))
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._session, self._own_session = session, session is None
        self._attempts, self._backoff = max(1, attempts), backoff
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=timeout)
        self._seal_timeout = seal_timeout
        self._retried = False  # whether the last request needed more than one attempt

    async def __aenter__(self) -> LiveClient:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            if self._create:
                body: Json = {"id": self.asset_id, "title": self._title, "format": self._format,
                              "access": self._access,
                              "transcript": True if self._transcript else None}
                status, rec = await self._call(
                    "POST", "/v1/live", json={k: v for k, v in body.items() if v is not None})
                if status == 409 and self._retried and self.asset_id:
                    rec = await self._get_asset()  # made by an attempt whose answer was lost
                    status = 201 if rec.get("state") == "live" else status
                if status != 201:
                    raise _refused("creating the live stream", status, rec)
                self.asset_id = str(rec["id"])
            else:
                rec = await self._get_asset()
                if rec.get("state") != "live":
                    raise LiveError(f"{self.asset_id} is not live (state {rec.get('state')!r})",
                                    409, rec)
            self.asset = rec
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            if exc_type is None and self.record is None:
                await self.end()
        finally:
            await self._close()

    async def send(self, data: bytes, *, text: str | None = None,
                   cues: list[Json] | Json | None = None) -> Json:
        """Append one chunk as `seq`; the origin's acknowledgement (`{"seq", "duplicate"...}`).
        `text`: what this chunk's audio says; `cues`: text timed in seconds of the stream's
        audio (see the module docstring)."""
        if self.record is not None:
            raise LiveError(f"{self.asset_id}: the stream has ended", 409)
        if not data:
            raise ValueError("an empty chunk")
        if len(data) > MAX_CHUNK_BYTES:
            raise ValueError(f"a chunk of {len(data)} bytes is over {MAX_CHUNK_BYTES}")
        fmt = self._format or {}
        if fmt.get("codec") == "pcm_s16le" and len(data) % (2 * int(fmt.get("channels") or 1)):
            raise ValueError("a raw PCM chunk must hold whole sample frames")
        seq = self.seq
        extra: dict[str, str] = {}
        if text is not None:
            extra[TEXT_HEADER] = quote(text, safe="")
        if cues is not None:  # one header per cue, ASCII JSON: each under the 8 KB limit
            extra_cues = [json.dumps(c) for c in (cues if isinstance(cues, list) else [cues])]
        else:
            extra_cues = []
        status, ack = await self._call("POST", f"{self._path()}/chunks", extra_headers=extra,
                                       extra_cues=extra_cues, params={"seq": str(seq)},
                                       data=data)
        if status == 409 and ack.get("expected") == seq + 1:
            ack = {**ack, "seq": seq, "duplicate": True}  # it had arrived: the answer was lost
        elif status != 200:
            raise _refused(f"sending chunk {seq}", status, ack)
        self.seq, self.bytes_sent = seq + 1, self.bytes_sent + len(data)
        return ack

    async def end(self) -> Json:
        """End the stream; the ASSET once the origin has sealed it (`state` "ready", or
        "failed"). A second call returns the same record."""
        if self.record is not None:
            return self.record
        status, rec = await self._call("POST", f"{self._path()}/end",
                                       read_timeout=self._seal_timeout)
        if status == 409:  # ended already (by an attempt whose answer was lost, or a timeout)
            rec = await self._get_asset()
        elif status != 200:
            raise _refused("ending the stream", status, rec)
        deadline = time.monotonic() + self._seal_timeout
        while rec.get("state") == "live" and time.monotonic() < deadline:
            await asyncio.sleep(0.25)  # an origin that seals in the background
            rec = await self._get_asset()
        self.record = rec
        return rec

    # --- requests ---------------------------------------------------------------------------

    def _path(self) -> str:
        return f"/v1/live/{quote(str(self.asset_id), safe='')}"

    async def _get_asset(self) -> Json:
        status, rec = await self._call(
            "GET", f"/v1/assets/{quote(str(self.asset_id), safe='')}")
        if status != 200:
            raise _refused(f"reading asset {self.asset_id}", status, rec)
        return rec

    async def _call(self, method: str, path: str, *, read_timeout: float | None = None,
                    extra_headers: dict[str, str] | None = None,
                    extra_cues: list[str] | None = None,
                    **kwargs: Any) -> tuple[int, Json]:
        """(status, JSON body), retrying network errors, timeouts and 5xx/429
        with exponential backoff; LiveError once every attempt failed."""
        assert self._session is not None, "use LiveClient with `async with`"
        url = self.base_url + path
        req_timeout = self._timeout if read_timeout is None else aiohttp.ClientTimeout(
            total=None, sock_connect=10, sock_read=read_timeout)
        delay, problem = self._backoff, ""
        for attempt in range(1, self._attempts + 1):
            self._retried = attempt > 1
            try:
                headers: Any = {**self._headers, **extra_headers} if extra_headers else self._headers
                if extra_cues:  # a repeated header: pairs, which aiohttp sends as they are
                    headers = [*headers.items(), *((CUES_HEADER, v) for v in extra_cues)]
                async with self._session.request(method, url, headers=headers,
                                                 timeout=req_timeout, **kwargs) as resp:
                    body = await _json_body(resp)
                    if resp.status < 500 and resp.status != 429:
                        return resp.status, body
                    problem = f"{resp.status} {body.get('error') or resp.reason}"
            except (aiohttp.ClientError, TimeoutError) as e:
                problem = str(e) or type(e).__name__
            if attempt < self._attempts:
                await asyncio.sleep(delay)
                delay *= 2
        raise LiveError(f"{method} {url} failed after {self._attempts} attempts: {problem}")

    async def _close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None


async def _json_body(resp: aiohttp.ClientResponse) -> Json:
    """The answer's JSON object; `{"error": text}` for anything else (a proxy's HTML page)."""
    raw = await resp.read()
    try:
        value = json.loads(raw)
    except ValueError:
        return {"error": raw[:200].decode("utf-8", "replace").strip() or resp.reason or ""}
    return value if isinstance(value, dict) else {"value": value}


def _refused(what: str, status: int, body: Json) -> LiveError:
    message = body.get("error") or f"HTTP {status}"
    if isinstance(body.get("expected"), int) and "expected" not in str(message):
        message = f"{message} (expected seq {body['expected']})"
    return LiveError(f"{what}: {status} {message}", status, body)
