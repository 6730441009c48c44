"""Packaging jobs on the queue (`[jobs] backend = "redis"`), with real processes: a
redis-server of the test's own, `sori serve` origins and `sori worker` processes, on the
local store and on S3 (moto_server).

- an upload through one origin is packaged by a worker and plays from both origins; the
  other origin answers the job's state and its event stream, and refuses a second upload
  of the same id with 409;
- DELETE of an asset whose job is queued (no worker yet) or running aborts the job;
- a worker SIGKILLed in the middle of a job: another worker finishes it, the asset plays,
  one version prefix remains and the upload's source is gone from the store;
- Redis stopped, then started again: VOD keeps serving, uploads get 503 + Retry-After
  meanwhile, and work again afterwards without restarting anything;
- the clean-up of a dead attempt's leftovers (jobqueue.task.recover), on both stores.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from real_clients import local_env, s3_env, serve
from redis_support import (
    RedisServer,
    call,
    events,
    job,
    make_tone,
    queue_env,
    upload,
    wait_job,
    worker,
)

from jobqueue.task import _entry_copy, recover
from storage.base import Store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def short_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tone(tmp_path_factory.mktemp("media") / "short.wav", 8)


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tone(tmp_path_factory.mktemp("media") / "long.wav", 120)


def _plays(base: str, asset_id: str) -> None:
    """The master playlist, a media playlist and its first segment answer 200."""
    status, master, _ = call(base, "GET", f"/assets/{asset_id}/master.m3u8")
    assert status == 200, (status, master)
    media = next(line for line in master.decode().splitlines()
                 if line and not line.startswith("#"))
    status, playlist, _ = call(base, "GET", f"/assets/{asset_id}/{media}")
    assert status == 200
    segment = next(line for line in playlist.decode().splitlines()
                   if line.endswith(".m4s"))
    folder = media.rsplit("/", 1)[0]
    status, body, headers = call(base, "GET", f"/assets/{asset_id}/{folder}/{segment}")
    assert status == 200 and len(body) > 100
    assert "immutable" in headers["Cache-Control"]


def _local_keys(root: Path, prefix: str = "") -> list[str]:
    return sorted(str(p.relative_to(root)) for p in (root / prefix).rglob("*") if p.is_file())


def test_upload_packaged_by_a_worker_and_answered_by_both_origins(
        tmp_path: Path, short_wav: Path) -> None:
    root = tmp_path / "media"
    with RedisServer(tmp_path / "redis") as redis:
        env = queue_env(local_env(root), redis, tmp_path)
        with serve(env, tmp_path / "a.log") as a, serve(env, tmp_path / "b.log") as b:
            status, body, headers = upload(a.base, short_wav, "talk")
            assert status == 202, body
            job_id = body["job"]["id"]
            assert headers["Location"] == f"/v1/jobs/{job_id}"
            assert body["job"]["state"] == "queued" and body["asset"] == {"id": "talk"}
            # No worker yet: the job waits on the queue, and holds the asset everywhere.
            status, busy, _ = upload(b.base, short_wav, "talk")
            assert status == 409 and job_id in busy["error"]
            assert job(b.base, job_id)["state"] == "queued"
            # The source went to the store, not to a local path.
            assert [k.split("/")[0] for k in _local_keys(root)] == [".uploads"]
            with worker(env, tmp_path / "w.log"):
                seen = events(b.base, job_id)  # followed on the origin that did not take it
                assert seen[-1][0] == "done", seen
                assert seen[-1][1]["progress"] == 1.0
                states = [e[1]["state"] for e in seen]
                assert states[-1] == "done" and set(states) <= {"queued", "running", "done"}
                done_a = job(a.base, job_id)
                assert done_a["state"] == "done" and done_a == job(b.base, job_id)
                assert done_a["asset"] == "talk" and done_a["error"] is None
            for origin in (a, b):
                _plays(origin.base, "talk")
                status, rec, _ = call(origin.base, "GET", "/v1/assets/talk")
                assert status == 200 and rec["state"] == "ready"
            assert not (root / ".uploads").exists() or not any((root / ".uploads").iterdir())
            # The asset is free again: the next upload is taken (and stays queued).
            status, body, _ = upload(b.base, short_wav, "talk")
            assert status == 202, body
            status, _, _ = call(a.base, "GET", "/v1/jobs/0123456789abcdef")
            assert status == 404


def test_delete_aborts_a_queued_and_a_running_job(tmp_path: Path, short_wav: Path,
                                                  long_wav: Path) -> None:
    root = tmp_path / "media"
    with RedisServer(tmp_path / "redis") as redis:
        env = queue_env(local_env(root), redis, tmp_path)
        with serve(env, tmp_path / "a.log") as a, serve(env, tmp_path / "b.log") as b:
            # Queued (no worker): DELETE on the other origin aborts it.
            status, body, _ = upload(a.base, short_wav, "queued")
            assert status == 202
            queued_id = body["job"]["id"]
            status, _, _ = call(b.base, "DELETE", "/v1/assets/queued")
            assert status == 204
            ended = job(a.base, queued_id)
            assert ended["state"] == "failed" and "deleted" in ended["error"]
            assert _local_keys(root) == []  # its source is gone from the store
            with worker(env, tmp_path / "w.log"):
                # Running: the worker stops it and removes what it had written.
                status, body, _ = upload(a.base, long_wav, "running")
                assert status == 202
                running_id = body["job"]["id"]
                wait_job(a.base, running_id, "running", timeout=30)
                status, _, _ = call(b.base, "DELETE", "/v1/assets/running")
                assert status == 204
                ended = job(b.base, running_id)
                assert ended["state"] == "failed" and "deleted" in ended["error"]
                status, _, _ = call(a.base, "GET", "/v1/assets/running")
                assert status == 404
                assert _local_keys(root) == []
                # The id is free again, and the worker takes the next job.
                status, body, _ = upload(b.base, short_wav, "queued")
                assert status == 202
                assert wait_job(a.base, body["job"]["id"])["state"] == "done"
            _plays(b.base, "queued")


def test_a_worker_killed_mid_job_has_its_job_finished_by_another(
        tmp_path: Path, long_wav: Path, s3_server: Any) -> None:
    bucket = f"jobs-kill-{int(time.time() * 1000)}"
    client = s3_server.client()
    try:
        with RedisServer(tmp_path / "redis") as redis:
            env = queue_env(s3_env(s3_server, bucket), redis, tmp_path)
            with serve(env, tmp_path / "a.log") as a, \
                    worker(env, tmp_path / "w1.log") as first:
                status, body, _ = upload(a.base, long_wav, "survivor")
                assert status == 202, body
                job_id = body["job"]["id"]
                # In the middle: running, its snapshot written, encoding under way.
                running = wait_job(a.base, job_id, "running", timeout=30)
                deadline = time.monotonic() + 30
                while running["phase"] in ("starting", "snapshot", "fetching") \
                        or running["progress"] < 0.2:
                    assert time.monotonic() < deadline, running
                    assert running["state"] == "running", running
                    time.sleep(0.05)
                    running = job(a.base, job_id)
                assert running["attempt"] == 1
                first.kill_hard()
                killed_at = time.monotonic()
                with worker(env, tmp_path / "w2.log"):
                    done = wait_job(a.base, job_id, timeout=90)
                    took = time.monotonic() - killed_at
                assert done["state"] == "done", (done, (tmp_path / "w2.log").read_text())
                assert done["attempt"] == 2
                _plays(a.base, "survivor")
            keys = [o.object_name for o in client.list_objects(bucket, recursive=True)]
            versions = {k.split("/")[2] for k in keys if k.startswith("survivor/v/")}
            assert len(versions) == 1, versions
            record = json.loads(client.get_object(bucket, "survivor/asset.json").read())
            assert record["version"] in versions
            assert not [k for k in keys if k.startswith(".uploads/")], keys
            print(f"job finished {took:.1f} s after its first worker was killed")
    finally:
        asyncio.run(s3_server.drop_bucket(bucket))


def test_redis_outage_vod_serves_uploads_refused_then_recover(
        tmp_path: Path, short_wav: Path) -> None:
    root = tmp_path / "media"
    with RedisServer(tmp_path / "redis") as redis:
        env = queue_env(local_env(root), redis, tmp_path)
        with serve(env, tmp_path / "a.log") as a, worker(env, tmp_path / "w.log"):
            status, body, _ = upload(a.base, short_wav, "before")
            assert status == 202
            job_id = body["job"]["id"]
            assert wait_job(a.base, job_id)["state"] == "done"
            redis.stop()
            for _ in range(3):
                _plays(a.base, "before")
                status, err, headers = upload(a.base, short_wav, "during")
                assert status == 503, (status, err)
                assert int(headers["Retry-After"]) > 0 and "Redis" in err["error"]
                status, _, headers = call(a.base, "GET", f"/v1/jobs/{job_id}")
                assert status == 503 and headers["Retry-After"]
                status, rec, _ = call(a.base, "GET", "/v1/assets/before")
                assert status == 200 and rec["state"] == "ready"
                time.sleep(0.5)
            assert not list((tmp_path / "uploads").glob("up-*"))  # nothing kept on the side
            assert not (root / ".uploads").exists() or not any((root / ".uploads").iterdir())
            redis.start()  # same port, empty (no persistence)
            deadline = time.monotonic() + 20
            while True:
                _plays(a.base, "before")
                status, body, _ = upload(a.base, short_wav, "after")
                if status == 202:
                    break
                assert status == 503 and time.monotonic() < deadline, (status, body)
                time.sleep(0.25)
            assert wait_job(a.base, body["job"]["id"], timeout=60)["state"] == "done"
            _plays(a.base, "after")


# --- the clean-up of a dead attempt (jobqueue.task.recover), on both stores ---------------

async def _put(store: Store, key: str, text: str) -> None:
    await store.put_bytes(key, text.encode(), "application/octet-stream")


async def _asset(store: Store, version: str) -> None:
    await _put(store, f"talk/v/{version}/low/index.m3u8", f"playlist {version}")
    await _put(store, "talk/master.m3u8", f"master {version}")
    await _put(store, "talk/manifest.mpd", f"mpd {version}")


async def test_recover_removes_a_dead_attempts_version_and_restores_the_entries(
        store: Store) -> None:
    await _asset(store, "000000001aaaaaa")
    await _put(store, "talk/asset.json", json.dumps({"version": "000000001aaaaaa"}))
    snapshot = {"versions": ["000000001aaaaaa"], "record": "000000001aaaaaa",
                "entries": ["master.m3u8", "manifest.mpd"]}
    for name in snapshot["entries"]:
        await store.put_bytes(_entry_copy("j1", name), await store.get(f"talk/{name}"),
                              "text/plain")
    await _asset(store, "000000002bbbbbb")  # died after the entries, before the record
    assert not await recover(store, "talk", "j1", snapshot, keep_versions=2)
    assert await store.list_dirs("talk/v/") == ["000000001aaaaaa"]
    assert await store.get("talk/master.m3u8") == b"master 000000001aaaaaa"
    assert await store.get("talk/manifest.mpd") == b"mpd 000000001aaaaaa"


async def test_recover_finds_a_dead_attempt_that_had_committed(store: Store) -> None:
    snapshot = {"versions": [], "record": None, "entries": []}
    await _asset(store, "000000002bbbbbb")  # a new asset, the dead attempt committed...
    await _put(store, "talk/asset.json", json.dumps({"version": "000000002bbbbbb"}))
    await _put(store, "talk/v/000000003cccccc/low/index.m3u8", "x")  # ...and another did not
    assert await recover(store, "talk", "j2", snapshot, keep_versions=2)
    assert await store.list_dirs("talk/v/") == ["000000002bbbbbb"]
    assert await store.get("talk/master.m3u8") == b"master 000000002bbbbbb"


async def test_recover_with_nothing_left_behind_changes_nothing(store: Store) -> None:
    snapshot = {"versions": [], "record": None, "entries": []}
    assert not await recover(store, "talk", "j3", snapshot, keep_versions=2)
    assert await store.list("talk/") == []
