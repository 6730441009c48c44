"""Packaging jobs: bounded concurrency and queueing, the SSE stream (progress, final
event, late subscribers, heartbeats), busy assets, metrics, and shutdown."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from test_api_support import (
    Api,
    Event,
    api_config,
    make_speech,
    read_events,
    uploads_left,
)

from origin.app import create_app
from origin.http import sse
from storage.base import Store

LONG_TEXT = " ".join(["Sori keeps a queue of packaging jobs and runs them one at a time."] * 4)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_speech(tmp_path_factory.mktemp("speech") / "speech.wav").read_bytes()


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """About 15 s: long enough that a second job is certainly queued behind it."""
    return make_speech(tmp_path_factory.mktemp("long") / "long.wav", LONG_TEXT).read_bytes()


@pytest.fixture
async def api(local_store: Store, tmp_path: Path, origin_client: Any) -> Api:
    cfg = api_config(tmp_path, job_concurrency=1)
    return Api(await origin_client(create_app(cfg, local_store)), local_store, cfg)


async def test_second_job_waits_in_the_queue(api: Api, long_speech: bytes,
                                             speech: bytes) -> None:
    _s, first = await api.upload_raw(long_speech, id="first")
    _s, second = await api.upload_raw(speech, id="second")
    first_id, second_id = first["job"]["id"], second["job"]["id"]
    assert second["job"]["state"] == "queued"

    # Follow both: while the first runs, the second must stay queued.
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        a, b = await api.job(first_id), await api.job(second_id)
        seen.append((a["state"], b["state"]))
        if b["state"] in ("done", "failed"):
            break
        await asyncio.sleep(0.05)
    assert ("running", "queued") in seen
    assert ("queued", "running") not in seen and ("running", "running") not in seen
    for a_state, b_state in seen:
        if b_state == "running":
            assert a_state == "done"
    assert seen[-1] == ("done", "done")


async def test_sse_of_a_queued_job_shows_the_wait(api: Api, long_speech: bytes,
                                                  speech: bytes) -> None:
    _s, first = await api.upload_raw(long_speech, id="first")
    _s, second = await api.upload_raw(speech, id="second")
    events = [e for e in await api.events(second["job"]["id"]) if isinstance(e, Event)]
    states = [e.json()["state"] for e in events]
    assert states[0] == "queued"
    assert "running" in states and states[-1] == "done"
    assert states.index("running") > states.index("queued")
    assert events[-1].event == "done"
    assert [int(e.id or 0) for e in events] == sorted(int(e.id or 0) for e in events)
    assert (await api.job(first["job"]["id"]))["state"] == "done"


async def test_late_subscriber_gets_the_final_event_at_once(api: Api, speech: bytes) -> None:
    _s, body = await api.upload_raw(speech, id="late")
    job = await api.finish(body["job"]["id"])
    t0 = time.monotonic()
    events = await api.events(job["id"])
    assert time.monotonic() - t0 < 1.0
    assert [e.event for e in events if isinstance(e, Event)] == ["done"]
    final = [e for e in events if isinstance(e, Event)][0].json()
    assert final["state"] == "done" and final["progress"] == 1.0 and final["error"] is None


async def test_failed_job_final_event(api: Api) -> None:
    _s, body = await api.upload_raw(b"not audio at all\n" * 50, id="bad")
    events = [e for e in await api.events(body["job"]["id"]) if isinstance(e, Event)]
    assert events[-1].event == "failed"
    assert "not a media file" in events[-1].json()["error"]
    late = [e for e in await api.events(body["job"]["id"]) if isinstance(e, Event)]
    assert [e.event for e in late] == ["failed"]


async def test_heartbeats_on_an_idle_stream(api: Api, long_speech: bytes, speech: bytes,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "HEARTBEAT", 0.05)
    await api.upload_raw(long_speech, id="first")
    _s, body = await api.upload_raw(speech, id="second")  # idle while queued
    events = await api.events(body["job"]["id"])
    assert ": ping" in events
    assert isinstance(events[-1], Event) and events[-1].event == "done"


async def test_a_busy_asset_refuses_another_upload_and_delete(api: Api, long_speech: bytes,
                                                              speech: bytes) -> None:
    _s, first = await api.upload_raw(long_speech, id="busy")
    status, body = await api.upload_raw(speech, id="busy")
    assert status == 409 and first["job"]["id"] in body["error"]
    status, body = await api.upload_form(speech, id="busy")
    assert status == 409
    resp = await api.client.delete("/v1/assets/busy")
    assert resp.status == 409
    assert (await api.finish(first["job"]["id"]))["state"] == "done"
    # Once the job has ended the asset can be packaged again (a new version).
    status, body = await api.upload_raw(speech, id="busy", title="Again")
    assert status == 202
    assert (await api.finish(body["job"]["id"]))["state"] == "done"
    asset = await (await api.client.get("/v1/assets/busy")).json()
    assert asset["title"] == "Again"


async def test_job_metrics(api: Api, speech: bytes) -> None:
    _s, good = await api.upload_raw(speech, id="good")
    await api.finish(good["job"]["id"])
    _s, bad = await api.upload_raw(b"\x00" * 5000, id="bad")
    await api.finish(bad["job"]["id"])
    text = await (await api.client.get("/metrics")).text()
    assert 'sori_jobs{state="done"} 1.0' in text
    assert 'sori_jobs{state="failed"} 1.0' in text
    assert 'sori_jobs{state="queued"} 0.0' in text
    assert 'sori_jobs_finished_total{state="done"} 1.0' in text
    assert 'sori_jobs_finished_total{state="failed"} 1.0' in text
    assert "sori_packaging_realtime_factor_count 1.0" in text
    assert 'sori_http_requests_total{route="api",status="202"} 2.0' in text


async def test_shutdown_cancels_jobs_and_leaves_nothing(local_store: Store, tmp_path: Path,
                                                        long_speech: bytes) -> None:
    cfg = api_config(tmp_path, job_concurrency=1)
    client = TestClient(TestServer(create_app(cfg, local_store)))
    await client.start_server()
    api = Api(client, local_store, cfg)
    try:
        _s, first = await api.upload_raw(long_speech, id="cut")
        _s, queued = await api.upload_raw(long_speech, id="never")
        stream = await client.get(f"/v1/jobs/{first['job']['id']}/events")
        reader = asyncio.create_task(read_events(stream))
        await asyncio.sleep(0.5)
        t0 = time.monotonic()
        await client.server.close()  # what `sori serve` does on SIGTERM
        assert time.monotonic() - t0 < 5
        events = [e for e in await asyncio.wait_for(reader, 10) if isinstance(e, Event)]
    finally:
        await client.close()
    assert events[-1].event == "failed"
    assert "shut down" in events[-1].json()["error"]
    for asset_id in ("cut", "never"):
        assert await local_store.list(f"{asset_id}/") == []
    assert uploads_left(cfg) == []
    assert queued["job"]["state"] == "queued"
