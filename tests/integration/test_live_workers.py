"""Live across workers and replicas, with real processes (issue 12): `sori serve` with two
workers, and two `sori serve` replicas on one store (local, and S3 on moto).

- A stream created and fed through connections that land on any worker (a new connection
  per request), its playlists, blocking reloads, parts and SSE asked of every worker:
  each reload is checked with tests/llhls_rules.py and answered promptly; some answers
  came through the owner's peer (`Via: 1.1 sori-peer`), some from the owner itself.
- The owner (a worker, or a replica) killed with SIGKILL: the producer's next requests
  get 503 with Retry-After while the stream is being sealed, then 409 (the stream is not
  taken over: it is sealed); listeners on the other process see 200s or 503s, never a
  broken playlist, and the stream sealed within the producer timeout; the sealed asset
  passes check_sealed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from llhls_rules import MediaPlaylist, check_live_media, parse_media
from real_clients import Origin
from test_live_support import (
    TARGET,
    LiveHttp,
    check_sealed,
    free_port,
    in_process,
    live_config,
    local_env,
    make_speech,
    s3_env,
    serve,
    wav_pcm,
)

from origin.live.claims import CLAIM_TTL, Claims
from origin.live.claims import PREFIX as CLAIMS_PREFIX
from storage.base import Store
from storage.local import LocalStore

PRODUCER_TIMEOUT = 3.0
KEY = "workers-write-key-0123456789"
VIA = "sori-peer"


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], bytes, int]:
    path = make_speech(tmp_path_factory.mktemp("speech") / "speech.wav", minimum=5.0)
    rate, channels, pcm = wav_pcm(path)
    fmt = {"codec": "pcm_s16le", "sample_rate": rate, "channels": channels}
    return fmt, pcm, rate * channels * 2


def fresh() -> aiohttp.ClientSession:
    """A client whose every request opens a new connection: the kernel spreads them over
    the workers sharing the port."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))


def _env(base: dict[str, str], tmp: Path, **more: str) -> dict[str, str]:
    return {**base, "SORI_ORIGIN_UPLOAD_DIR": str(tmp / "uploads"),
            "SORI_LIVE_PRODUCER_TIMEOUT": str(PRODUCER_TIMEOUT), **more}


async def _follow(http: LiveHttp, path: str, stop: asyncio.Event,
                  seen: dict[str, Any]) -> MediaPlaylist | None:
    """A listener: blocking reloads part by part, each checked against the previous one,
    each preload-hinted part fetched; counts what went through a peer."""
    res = await http.get(path)
    assert res.status == 200, (res.status, res.body)
    prev = check_live_media(res.text, target_duration=TARGET, audio=True)
    while not stop.is_set() and not prev.ended:
        msn, part = prev.progress
        try:
            res = await http.get(path, params={"_HLS_msn": str(msn), "_HLS_part": str(part)},
                                 timeout=20)
        except aiohttp.ClientError:
            # Held by the worker that was just killed (one port, SO_REUSEPORT): its
            # connection is reset, as a player's would be; a player asks again.
            seen["reset"] = seen.get("reset", 0) + 1
            assert seen["reset"] <= 3, "connections keep being reset"
            continue
        if res.status == 503:  # the owner is gone: retry after a moment, never a bad list
            assert res.headers.get("Retry-After"), res.headers
            seen["503"] = seen.get("503", 0) + 1
            await asyncio.sleep(0.2)
            continue
        assert res.status == 200, (res.status, res.body)
        seen["via" if VIA in res.headers.get("Via", "") else "direct"] += 1
        pl = (check_live_media(res.text, target_duration=TARGET, previous=prev, audio=True)
              if "#EXT-X-ENDLIST" not in res.text or "#EXT-X-PART:" in res.text
              else parse_media(res.text))
        if not pl.ended:
            seen["held"].append(res.held)
        if pl.preload_hints and not pl.ended:
            hint = pl.preload_hints[0].uri
            base = path.rsplit("/", 1)[0]
            got = await http.get(f"{base}/{hint}", timeout=20)
            # 404: the hinted part of a stream that has just ended will never exist
            assert got.status in (200, 503, 404), (hint, got.status)
            if got.status == 200:
                seen["parts"] += 1
            elif got.status == 404:
                seen["404"] = seen.get("404", 0) + 1
        prev = pl
    return prev


async def _events(base: str, asset_id: str) -> list[str]:
    names = []
    async with fresh() as session, session.get(f"{base}/v1/live/{asset_id}/events",
                                                 timeout=aiohttp.ClientTimeout(total=60)) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        async for line in r.content:
            if line.startswith(b"event: "):
                names.append(line[7:].strip().decode())
                if names[-1] == "ended":
                    break
    return names


async def test_two_workers_answer_every_request_of_a_live_stream(
        tmp_path: Path, speech: tuple[dict[str, Any], bytes, int]) -> None:
    fmt, pcm, rate = speech
    env = _env(local_env(tmp_path / "media"), tmp_path, SORI_ORIGIN_WORKERS="2")
    with serve(env, tmp_path / "serve.log") as origin:
        await _wait_workers(origin, 2)
        async with fresh() as session:
            http = LiveHttp(session, origin.base)
            rec = await http.start("w2", fmt)
            paths = await http.media_playlists("w2")
            low = next(p for p in paths.values() if "/low/" in p)
            events = asyncio.create_task(_events(origin.base, "w2"))
            stop = asyncio.Event()
            seen: dict[str, Any] = {"via": 0, "direct": 0, "parts": 0, "held": []}
            listeners = [asyncio.create_task(_follow(LiveHttp(session, origin.base), p, stop,
                                                     seen))
                         for p in [low, *paths.values()]]
            seq = await http.push("w2", pcm, size=rate // 5, pace=rate, lead=0.3)
            sealed = await http.finish("w2")
            finals = await asyncio.wait_for(asyncio.gather(*listeners), 30)
            names = await asyncio.wait_for(events, 30)
        assert all(pl is not None and pl.ended for pl in finals)
        assert "started" in names and names[-1] == "ended", names
        assert seen["via"] > 0 and seen["direct"] > 0, seen  # both workers answered
        assert seen["parts"] > 0 and seen.get("404", 0) <= len(listeners), seen
        held = sorted(seen["held"])
        # a blocking reload is answered when its part lands: within a part's duration
        # (plus scheduling), never held to a timeout
        assert held and held[-1] < rec["live"]["part_duration"] + 1.0, held[-5:]
        async with fresh() as session:
            http = LiveHttp(session, origin.base)
            await check_sealed(http, "w2", len(pcm) / rate, store=LocalStore(tmp_path / "media"))
        assert seq > 10 and sealed["state"] == "ready"


async def _wait_workers(origin: Origin, n: int) -> None:
    """Until `n` workers have logged that they serve (and listen for peers)."""
    deadline = time.monotonic() + 20
    while origin.log.read_text(errors="replace").count("(peers: ") < n:
        assert time.monotonic() < deadline, origin.log.read_text()[-2000:]
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("topology", ["workers", "replicas-local", "replicas-s3"])
async def test_the_owner_killed_is_sealed_by_another_within_the_producer_timeout(
        tmp_path: Path, speech: tuple[dict[str, Any], bytes, int], topology: str,
        request: pytest.FixtureRequest) -> None:
    fmt, pcm, rate = speech
    if topology == "replicas-s3":
        server = request.getfixturevalue("s3_server")
        bucket = f"live-workers-{int(time.time() * 1000)}"
        base_env = s3_env(server, bucket)
    else:
        server, bucket = None, ""
        base_env = local_env(tmp_path / "media")
    try:
        with ExitStack() as stack:
            if topology == "workers":
                env = _env(base_env, tmp_path, SORI_ORIGIN_WORKERS="2")
                a = b = stack.enter_context(serve(env, tmp_path / "serve.log"))
                await _wait_workers(a, 2)
            else:
                env = _env(base_env, tmp_path, SORI_ORIGIN_WORKERS="1")
                a = stack.enter_context(serve(env, tmp_path / "a.log"))
                b = stack.enter_context(serve(env, tmp_path / "b.log", port=free_port()))
            await _killed(a, b, topology, fmt, pcm, rate)
    finally:
        if server is not None:
            await server.drop_bucket(bucket)


async def _killed(a: Origin, b: Origin, topology: str, fmt: dict[str, Any], pcm: bytes,
                  rate: int) -> None:
    async with fresh() as session:
        on_a, on_b = LiveHttp(session, a.base), LiveHttp(session, b.base)
        rec = await on_a.start("gone", fmt)
        owner = rec["live"]["owner"]
        owner_pid = int(owner.rsplit(":", 1)[1])
        if topology != "workers":
            assert owner_pid != b.proc.pid
        paths = await on_b.media_playlists("gone")
        low = next(p for p in paths.values() if "/low/" in p)
        # fed through the other process (a replica forwards to the owner)
        half = len(pcm) // 2 // (rate // 5) * (rate // 5)
        seq = await on_b.push("gone", pcm[:half], size=rate // 5, pace=rate, lead=0.3)
        res = await on_b.get(low)
        assert res.status == 200
        before = check_live_media(res.text, target_duration=TARGET, audio=True)
        stop = asyncio.Event()
        seen: dict[str, Any] = {"via": 0, "direct": 0, "parts": 0, "held": []}
        listener = asyncio.create_task(_follow(on_b, low, stop, seen))
        await asyncio.sleep(0.5)
        os.kill(owner_pid, signal.SIGKILL)
        killed_at = time.monotonic()
        # the producer's next chunks: 503 with Retry-After while the stream is sealed,
        # then 409 (sealed: not taken over)
        statuses = []
        for _ in range(100):
            try:
                res = await on_b.chunk("gone", seq, pcm[half:half + rate // 5])
            except aiohttp.ClientError:  # a connection of the killed worker: reset
                statuses.append(0)
                assert statuses.count(0) <= 3, statuses
                continue
            statuses.append(res.status)
            if res.status == 503:
                assert res.headers.get("Retry-After"), res.headers
            if res.status == 409:
                break
            assert res.status in (503, 200), (res.status, res.body)
            await asyncio.sleep(0.1)
        assert statuses[-1] == 409, statuses
        final = await asyncio.wait_for(listener, PRODUCER_TIMEOUT + 10)
        sealed_after = time.monotonic() - killed_at
        assert final is not None and final.ended
        assert sealed_after <= PRODUCER_TIMEOUT + 2.0, sealed_after
        rec = await on_b.wait_ready("gone", 10)
        assert rec["live"]["reason"] == "recovered", rec["live"]
        assert rec["duration"] >= before.listed_duration - 0.01
        for path in paths.values():
            res = await on_b.get(path)
            assert res.status == 200 and "#EXT-X-ENDLIST" in res.text
        await check_sealed(on_b, "gone", rec["duration"], tolerance=0.6)


async def test_a_non_owner_never_answers_409_or_404_while_the_record_says_live(
        tmp_path: Path, speech: tuple[dict[str, Any], bytes, int]) -> None:
    """Two replicas on one local store, the stream owned by A. Whenever B finds no usable
    owner while the stream's record says live (no directory entry: here A is stopped with
    SIGSTOP and its entry removed, as if not written yet or read stale; or a request that
    was forwarded to B already, which B must not forward again), B answers a chunk and an
    object A has not written yet with 503 + Retry-After and no-store, never a 409 "not
    live" or a 404 an edge would keep; once the entry is back, B forwards again and the
    chunk is taken once."""
    fmt, pcm, rate = speech
    env = _env(local_env(tmp_path / "media"), tmp_path, SORI_ORIGIN_WORKERS="1",
               SORI_LIVE_PRODUCER_TIMEOUT="20")
    size = rate // 5
    with serve(env, tmp_path / "a.log") as a, \
            serve(env, tmp_path / "b.log", port=free_port()) as b:
        async with fresh() as session:
            on_a, on_b = LiveHttp(session, a.base), LiveHttp(session, b.base)
            rec = await on_a.start("unowned", fmt)
            owner_pid = int(rec["live"]["owner"].rsplit(":", 1)[1])
            assert owner_pid != b.proc.pid
            seq = await on_b.push("unowned", pcm[:10 * size], size=size)  # forwarded
            low = next(p for p in (await on_b.media_playlists("unowned")).values()
                       if "/low/" in p)
            future = low.replace("index.m3u8", "seg_00900.0.m4s")  # not written for long

            def refused(res: Any, what: str) -> None:
                assert res.status == 503, (what, res.status, res.body)
                assert res.headers.get("Retry-After"), (what, res.headers)
                assert "no-store" in res.headers.get("Cache-Control", ""), (what, res.headers)

            # 1. forwarded here already (a forwarder's stale entry): never forwarded again
            peer = {"X-Sori-Peer": "1"}
            refused(await on_b.request("POST", "/v1/live/unowned/chunks", data=b"\0\0" * 8,
                                       params={"seq": str(seq)}, headers=peer), "hop chunk")
            refused(await on_b.get(future, headers=peer), "hop object")
            # 2. no directory entry while the record says live
            marker = tmp_path / "media" / ".live" / "unowned"
            os.kill(owner_pid, signal.SIGSTOP)
            try:
                marker.unlink()
                await asyncio.sleep(1.2)  # B's cached entry (1 s) runs out
                refused(await on_b.chunk("unowned", seq, pcm[10 * size:11 * size]), "chunk")
                refused(await on_b.get(future), "object")
                status, now = await on_b.record("unowned")
                assert status == 200 and now["state"] == "live", now
            finally:
                os.kill(owner_pid, signal.SIGCONT)
            # 3. A's heartbeat writes the entry again: B forwards, the chunk is taken once
            deadline = time.monotonic() + 10
            while True:
                res = await on_b.chunk("unowned", seq, pcm[10 * size:11 * size])
                if res.status == 200:
                    break
                refused(res, "chunk while the entry comes back")
                assert time.monotonic() < deadline, "B never forwarded again"
                await asyncio.sleep(0.2)
            assert VIA in res.headers.get("Via", ""), res.headers
            assert res.json()["duplicate"] is False and res.json()["seq"] == seq
            seq = await on_b.push("unowned", pcm[11 * size:20 * size], size=size, seq=seq + 1)
            sealed = await on_b.finish("unowned")
            assert sealed["state"] == "ready"
            # (A stopped for a moment: its encoder may pad a part more, as after a kill)
            await check_sealed(on_b, "unowned",
                               20 * size / rate + sealed.get("silence_inserted", 0.0),
                               store=LocalStore(tmp_path / "media"), tolerance=0.6)


# --- two apps on one store, in this process: the record's conditional writes ----------------

async def _two_workers(origin_client: Any, store: Store, tmp_path: Path) -> list[LiveHttp]:
    cfg = live_config(tmp_path, api_keys=(KEY,))
    bases = [(await in_process(origin_client, store, cfg))[1] for _ in range(2)]
    session = aiohttp.ClientSession()
    return [LiveHttp(session, base, key=KEY) for base in bases]


async def test_two_workers_creating_one_id_at_once_make_one_stream(
        store: Store, origin_client: Any, tmp_path: Path,
        speech: tuple[dict[str, Any], bytes, int]) -> None:
    """Both workers find no record and start a stream; the record is written only where
    there is none, so one is created (201) and the other answered 409, having left nothing
    in the store (its init segments removed, the master playlist the winner's)."""
    fmt, _pcm, _ = speech
    a, b = await _two_workers(origin_client, store, tmp_path)
    try:
        for n in range(5):
            name = f"twice-{n}"
            made = await asyncio.gather(a.create(name, fmt), b.create(name, fmt))
            assert sorted(r.status for r in made) == [201, 409], [(r.status, r.body) for r in made]
            winner = next(r.json() for r in made if r.status == 201)
            keys = await store.list(f"{name}/")
            versions = {k.split("/")[2] for k in keys if k.startswith(f"{name}/v/")}
            assert versions == {winner["version"]}, keys
            assert winner["version"] in (await store.get(f"{name}/master.m3u8")).decode()
            assert json.loads(await store.get(f"{name}/asset.json"))["version"] == winner["version"]
            for http in (a, b):
                await http.end(name)
    finally:
        await a.session.close()


class _SlowRecords:
    """The store as a loaded S3 server answers one worker: reading an asset record takes
    `delay` seconds (the window between that worker's read of a record and its write)."""

    def __init__(self, store: Store, delay: float) -> None:
        self._store = store
        self.delay = delay

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def get(self, key: str) -> bytes:
        data = await self._store.get(key)
        if key.endswith("/asset.json"):
            await asyncio.sleep(self.delay)  # read, then slow to arrive
        return data

    async def get_tagged(self, key: str) -> tuple[bytes, str]:
        data = await self._store.get_tagged(key)
        if key.endswith("/asset.json"):
            await asyncio.sleep(self.delay)
        return data


async def test_a_patch_on_another_worker_is_never_written_over_by_the_owner(
        store: Store, origin_client: Any, tmp_path: Path,
        speech: tuple[dict[str, Any], bytes, int]) -> None:
    """The owner notes the stream's start in the record on its first byte (in the
    background), reading the record and writing it back; its reads are slow (0.4 s), and
    another worker's PATCH lands inside that window. The PATCH is kept: the owner's write
    is conditional, loses, reads again. (A plain read-then-write put the old title and
    access back.) The sealed record keeps it too."""
    fmt, pcm, bps = speech
    cfg = live_config(tmp_path, api_keys=(KEY,))
    slow = _SlowRecords(store, 0.0)
    _, owner_base = await in_process(origin_client, slow, cfg)  # type: ignore[arg-type]
    _, other_base = await in_process(origin_client, store, cfg)
    async with aiohttp.ClientSession() as session:
        owner, other = LiveHttp(session, owner_base, KEY), LiveHttp(session, other_base, KEY)
        await owner.start("patched", fmt)
        slow.delay = 0.4
        await owner.push("patched", pcm[:4096])  # the first byte: the owner reads the record
        await asyncio.sleep(0.1)
        res = await other.request("PATCH", "/v1/assets/patched",
                                  json_body={"title": "Renamed elsewhere", "access": "private"})
        assert res.status == 200, (res.status, res.body)
        deadline = time.monotonic() + 10.0
        while (stored := json.loads(await store.get("patched/asset.json")))["live"]["start"] is None:
            assert time.monotonic() < deadline, "the owner never wrote the stream's start"
            await asyncio.sleep(0.02)
        assert (stored["title"], stored["access"]) == ("Renamed elsewhere", "private"), stored
        slow.delay = 0.0
        await owner.push("patched", pcm[4096: bps * 2], seq=1)
        sealed = await owner.finish("patched")
    assert (sealed["title"], sealed["access"]) == ("Renamed elsewhere", "private"), sealed


async def test_sealing_claims_on_s3_without_redis_go_to_exactly_one(s3_store: Any,
                                                                   tmp_path: Path) -> None:
    """Two origins racing to seal a dead owner's stream on S3 with no Redis: the claim is
    a conditional create, so the second is refused; a released claim can be taken again,
    and one older than CLAIM_TTL (its holder died mid-seal) is broken."""
    cfg = live_config(tmp_path)
    one, two = Claims(s3_store, cfg), Claims(s3_store, cfg)
    assert await one.claim("dead") is True
    assert await two.claim("dead") is False
    assert await one.claim("dead") is False  # a claim is not taken twice, even by its holder
    await one.release("dead")
    assert await two.claim("dead") is True
    stale = json.dumps({"token": "gone:1", "at": time.time() - CLAIM_TTL - 1}).encode()
    await s3_store.put_bytes(f"{CLAIMS_PREFIX}old", stale, "application/json")
    assert await one.claim("old") is True
    assert await two.claim("old") is False
