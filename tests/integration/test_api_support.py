"""Helpers for the /v1 API tests: a client over a real socket, short espeak-ng speech,
and a Server-Sent Events reader."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from sori.config import Config, OriginConfig, PackagerConfig, SecurityConfig
from storage.base import Store

SPEECH_TEXT = ("Sori packages spoken words into streams. This short sample checks the "
               "upload interface from start to finish.")
# Short segments so a short sample still has several; two renditions and no loudness
# pass keep the suite quick (the packager's own tests cover the full ladder).
PACKAGER = dataclasses.replace(PackagerConfig(), segment_duration=2.0, loudness=False,
                               audio_ladder=PackagerConfig().audio_ladder[:2])
JOB_TIMEOUT = 60.0


def make_speech(path: Path, text: str = SPEECH_TEXT) -> Path:
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True)
    return path


def api_config(tmp_path: Path, *, api_keys: tuple[str, ...] = (), **origin: Any) -> Config:
    return Config(
        origin=dataclasses.replace(OriginConfig(), upload_dir=str(tmp_path / "uploads"),
                                   access_log=False, **origin),
        packager=PACKAGER,
        security=dataclasses.replace(SecurityConfig(), api_keys=api_keys),
    ).validate()


@dataclass
class Event:
    event: str
    data: str
    id: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


async def read_events(resp: aiohttp.ClientResponse) -> list[Event | str]:
    """Every event (and ': comment' line, as a str) until the server closes the stream."""
    out: list[Event | str] = []
    fields: dict[str, str] = {}
    data: list[str] = []
    async for raw in resp.content:
        line = raw.decode().rstrip("\r\n")
        if line == "":
            if data:
                out.append(Event(fields.get("event", "message"), "\n".join(data),
                                 fields.get("id")))
            fields, data = {}, []
        elif line.startswith(":"):
            out.append(line)
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            else:
                fields[name] = value
    return out


@dataclass
class Api:
    client: Any  # aiohttp.test_utils.TestClient
    store: Store
    cfg: Config
    key: str | None = None

    def _auth(self, headers: dict[str, str] | None = None) -> dict[str, str]:
        out = dict(headers or {})
        if self.key is not None:
            out.setdefault("Authorization", f"Bearer {self.key}")
        return out

    async def upload_raw(self, data: bytes, headers: dict[str, str] | None = None,
                         **query: str) -> tuple[int, Any]:
        resp = await self.client.post("/v1/assets", data=data, params=query,
                                      headers=self._auth({"Content-Type": "audio/wav",
                                                          **(headers or {})}))
        return resp.status, await resp.json()

    async def upload_form(self, content: bytes, filename: str = "talk.wav",
                          **fields: str) -> tuple[int, Any]:
        form = aiohttp.FormData()
        for name, value in fields.items():
            form.add_field(name, value)
        form.add_field("file", content, filename=filename, content_type="audio/wav")
        resp = await self.client.post("/v1/assets", data=form, headers=self._auth())
        return resp.status, await resp.json()

    async def events(self, job_id: str) -> list[Event | str]:
        async with asyncio.timeout(JOB_TIMEOUT):
            resp = await self.client.get(f"/v1/jobs/{job_id}/events")
            assert resp.status == 200, await resp.text()
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            assert resp.headers["Cache-Control"] == "no-cache"
            return await read_events(resp)

    async def finish(self, job_id: str) -> dict[str, Any]:
        """The job's last JOB, from its event stream."""
        events = [e for e in await self.events(job_id) if isinstance(e, Event)]
        assert events and events[-1].event in ("done", "failed"), events
        job: dict[str, Any] = events[-1].json()
        assert job["state"] == events[-1].event
        return job

    async def job(self, job_id: str) -> dict[str, Any]:
        resp = await self.client.get(f"/v1/jobs/{job_id}")
        assert resp.status == 200
        result: dict[str, Any] = await resp.json()
        return result

    async def asset_ids(self) -> list[str]:
        resp = await self.client.get("/v1/assets")
        assert resp.status == 200
        return [a["id"] for a in (await resp.json())["assets"]]


def uploads_left(cfg: Config) -> list[Path]:
    """The uploads left in the upload directory (none once their jobs have ended; the
    directory also holds the job board, origin.packaging.job_board)."""
    root = Path(cfg.origin.upload_dir)
    return [p for p in root.iterdir() if p.name != "jobs"] if root.exists() else []
