"""The cluster of docker-compose.yml, with real processes on one machine (issue 12): an S3
server (the session's moto_server), a redis-server, two `sori serve` origins, two
`sori worker` processes, and the nginx edge rendered from deploy/nginx with both origins
in its upstream (the second through `origins/*.conf`, as deploy/README.md documents).
Every service gets the same settings, as the compose file gives them: API key, signing
key, store, Redis, peer host.

Everything a user does goes through the edge:
- two uploads at once are packaged by the two workers (the job's Server-Sent Events read
  through the edge); the asset plays (master, media playlists, MPD, init and every
  segment, byte-equal to the store);
- a private upload plays through a signed URL and refuses unsigned requests;
- a live stream is created and fed through the edge (whichever origin takes it owns it),
  its playlists are read through the edge and from each origin directly (the other one
  forwards to the owner), blocking reloads included, and it seals into VOD;
- one origin stopped with SIGTERM: VOD not yet cached at the edge plays from the other.

Docker does not run here, so the compose file itself is checked statically against the
same shape (`test_the_compose_file_is_this_cluster`): its services, every sori
service's environment accepted by the real config loader, the same keys everywhere,
each origin's peer host its service name, every SORI_EDGE_* name given a value.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import m3u8
import pytest
import yaml
from edge_support import PLACEHOLDER, TEMPLATE, render_edge, self_signed
from llhls_rules import check_live_media
from real_clients import REPO, HttpClient, Origin, crawl_asset, nginx, serve
from redis_support import RedisServer, Worker, call, events, queue_env, wait_job, worker
from test_live_support import (
    TARGET,
    LiveHttp,
    check_sealed,
    free_port,
    make_speech,
    s3_env,
    wav_pcm,
)

from sori.config import load
from storage import S3Store

API_KEY = "cluster-api-key"
SIGNING_KEYS = {"k1": "cluster-signing-secret"}
PRODUCER_TIMEOUT = 5.0
VIA = "sori-peer"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def test_the_compose_file_is_this_cluster() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"s3", "redis", "origin-a", "origin-b", "worker-1", "worker-2",
                             "edge"}, sorted(services)
    sori = {n: s for n, s in services.items() if n.startswith(("origin-", "worker-"))}
    envs = {n: {k: str(v) for k, v in s["environment"].items()} for n, s in sori.items()}
    shared = envs["worker-1"]
    for name, env in envs.items():
        kind = "serve" if name.startswith("origin-") else "worker"
        assert sori[name]["command"][:2] == ["sori", kind], name
        cfg = load(REPO / "config.toml", env)  # every key known, every value valid
        assert cfg.storage.backend == "s3" and cfg.jobs.backend == "redis", name
        assert cfg.security.api_keys and cfg.security.signing_keys, name
        assert {k: v for k, v in env.items() if k != "SORI_ORIGIN_PEER_HOST"} == shared, name
        if name.startswith("origin-"):  # the other origins reach its live streams there
            assert cfg.origin.peer_host == name
            assert "origins" in sori[name]["networks"]["default"]["aliases"]
        assert set(sori[name]["depends_on"]) == {"s3", "redis"}, name
    endpoint = shared["SORI_STORAGE_ENDPOINT"]
    assert endpoint.split(":")[0] == "s3" and endpoint.endswith(":8333")
    assert "8333" in " ".join(services["s3"]["command"])
    assert shared["SORI_JOBS_REDIS_URL"].startswith("redis://redis:6379/")
    edge = services["edge"]
    edge_env = {k: str(v) for k, v in edge["environment"].items()}
    wanted = set(PLACEHOLDER.findall(TEMPLATE.read_text()))
    assert wanted <= set(edge_env), sorted(wanted - set(edge_env))
    assert edge_env["SORI_EDGE_ORIGIN"] == "origins:8080"
    mounts = {v.split(":")[1]: v.split(":")[0] for v in edge["volumes"]}
    assert mounts["/etc/nginx/templates/sori-edge.conf.template"] == \
        "./deploy/nginx/sori-edge.conf"
    conf_dir = edge_env["SORI_EDGE_CONF_DIR"]
    assert mounts[f"{conf_dir}/sori-edge-locations.conf"] == \
        "./deploy/nginx/sori-edge-locations.conf"
    assert set(edge["depends_on"]) == {"origin-a", "origin-b"}
    for name in ("s3", "redis", "origin-a", "origin-b", "edge"):
        assert services[name]["healthcheck"]["test"], name


@dataclass
class Cluster:
    edge: str  # the edge's base URL: what users reach
    origins: list[Origin]
    workers: list[Worker]
    store: Any  # conftest.S3Server.config(bucket): a StorageConfig for S3Store
    speech: Path
    work: Path
    ready: dict[str, dict[str, Any]] = field(default_factory=dict)  # asset id -> record


@pytest.fixture(scope="module")
def cluster(s3_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    work = tmp_path_factory.mktemp("cluster")
    speech = make_speech(work / "speech.wav", minimum=5.0)
    bucket = f"cluster-{int(time.time() * 1000)}"
    common = s3_env(s3_server, bucket,
                    SORI_SECURITY_API_KEYS=json.dumps([API_KEY]),
                    SORI_SECURITY_SIGNING_KEYS=json.dumps(SIGNING_KEYS),
                    SORI_ORIGIN_TRUSTED_PROXIES='["127.0.0.1"]',  # the edge
                    SORI_ORIGIN_PEER_HOST="127.0.0.1",  # compose: each origin's service name
                    SORI_ORIGIN_WORKERS="1",
                    SORI_LIVE_PRODUCER_TIMEOUT=str(PRODUCER_TIMEOUT))
    try:
        with ExitStack() as stack:
            redis = stack.enter_context(RedisServer(work / "redis"))

            def env(name: str) -> dict[str, str]:  # one machine each: its own upload dir
                return queue_env(common, redis, work / name)

            origins = [stack.enter_context(serve(env(n), work / f"{n}.log", port=free_port()))
                       for n in ("origin-a", "origin-b")]
            workers = [stack.enter_context(worker(env(n), work / f"{n}.log"))
                       for n in ("worker-1", "worker-2")]
            edge_dir = work / "edge"
            cert, key = self_signed(work)
            edge = render_edge(edge_dir, origin_port=origins[0].port, port=free_port(),
                               tls_port=free_port(), cert=cert, key=key)
            more = edge_dir / "conf" / "origins"  # SORI_EDGE_CONF_DIR/origins/*.conf
            more.mkdir()
            (more / "origin-b.conf").write_text(
                f"server 127.0.0.1:{origins[1].port} max_fails=3 fail_timeout=10s;\n")
            base = stack.enter_context(nginx(edge_dir, edge.http_block, edge.port,
                                             ready_path="/healthz"))
            yield Cluster(base, origins, workers, s3_server.config(bucket), speech, work)
    finally:
        asyncio.run(s3_server.drop_bucket(bucket))


def _upload(c: Cluster, asset_id: str, **query: str) -> dict[str, Any]:
    qs = urllib.parse.urlencode({"id": asset_id, **query})
    status, body, _ = call(c.edge, "POST", f"/v1/assets?{qs}", c.speech.read_bytes(),
                           {**AUTH, "Content-Type": "audio/wav"})
    assert status == 202, (status, body)
    assert isinstance(body, dict) and body["asset"]["id"] == asset_id
    return body


def _record(c: Cluster, asset_id: str) -> dict[str, Any]:
    status, body, _ = call(c.edge, "GET", f"/v1/assets/{asset_id}", headers=AUTH)
    assert status == 200 and body["state"] == "ready", (status, body)
    assert isinstance(body, dict)
    return body


async def _same_as_store(c: Cluster, objects: dict[str, bytes]) -> None:
    """Every URL path's body is the object the store holds under it (below /assets/)."""
    store = S3Store(c.store)
    try:
        for path, body in objects.items():
            key = path.removeprefix("/assets/")
            assert body == await store.get(key), f"{path}: not the store's bytes"
    finally:
        await store.close()


def _jobs_done_by(w: Worker) -> set[str]:
    """Asset ids whose job this worker finished (its log: `job K (ID) done in ...`)."""
    text = w.log.read_text(errors="replace")
    return {line.split("(", 1)[1].split(")", 1)[0] for line in text.splitlines()
            if ") done in " in line and "job " in line}


async def test_uploads_are_packaged_by_the_workers_and_play_through_the_edge(
        cluster: Cluster) -> None:
    c = cluster
    talk, spare = _upload(c, "talk"), _upload(c, "spare")  # two at once: one per worker
    # the job's events through the edge (unbuffered there), queued/running up to done
    seen = await asyncio.to_thread(events, c.edge, talk["job"]["id"])
    states = [job["state"] for _, job in seen]
    assert states[-1] == "done" and "running" in states, states
    # and its state from either origin directly: the job lives in Redis, not in one of them
    for origin in c.origins:
        assert wait_job(origin.base, talk["job"]["id"], "done")["asset"] == "talk"
    wait_job(c.edge, spare["job"]["id"], "done")
    done_by = [_jobs_done_by(w) for w in c.workers]
    assert sorted(map(len, done_by)) == [1, 1], done_by  # each worker packaged one
    rec = c.ready["talk"] = _record(c, "talk")
    c.ready["spare"] = _record(c, "spare")
    crawl = await asyncio.to_thread(crawl_asset, c.edge, "talk", duration=rec["duration"])
    assert crawl.variants and crawl.hls_segments and crawl.dash_segments
    await _same_as_store(c, {p: r.body for p, r in crawl.objects.items()})


async def test_a_private_asset_plays_through_a_signed_url_only(cluster: Cluster) -> None:
    c = cluster
    up = _upload(c, "secret", access="private")
    await asyncio.to_thread(wait_job, c.edge, up["job"]["id"], "done")
    status, urls, _ = call(c.edge, "POST", "/v1/assets/secret/playback-url",
                           json.dumps({"ttl": 600}).encode(),
                           {**AUTH, "Content-Type": "application/json"})
    assert status == 200, (status, urls)
    master = urllib.parse.urlsplit(urls["hls"]).path
    assert master.startswith("/assets/secret/~") and master.endswith("/master.m3u8")
    http = HttpClient(c.edge)
    got: dict[str, bytes] = {}

    def fetch(path: str) -> bytes:
        res = http.get(path)
        assert res.status == 200, (path, res.status, res.body[:200])
        got[path] = res.body
        return res.body

    def join(base: str, uri: str) -> str:
        return urllib.parse.urljoin(base, uri)

    variants = m3u8.loads(fetch(master).decode()).playlists
    assert variants
    media_path = join(master, variants[0].uri)
    media = m3u8.loads(fetch(media_path).decode())
    assert media.is_endlist and media.segment_map
    fetch(join(media_path, media.segment_map[0].uri))
    for seg in media.segments:
        fetch(join(media_path, seg.uri))
    token = master.split("/")[3]
    # the store holds each object once, under its path without the token
    await _same_as_store(c, {p.replace(f"/{token}/", "/", 1): b for p, b in got.items()})
    # without the token: refused, the objects just cached included
    for path in list(got)[:3] + [master]:
        res = http.get(path.replace(f"/{token}/", "/", 1))
        assert res.status == 403, (path, res.status)
        assert res.header("Cache-Control") == "no-store"
    assert http.get(master.replace(token, "~forged", 1)).status == 403


async def test_a_live_stream_through_the_edge_is_read_from_both_origins_and_seals(
        cluster: Cluster) -> None:
    c = cluster
    rate, channels, pcm = wav_pcm(c.speech)
    fmt = {"codec": "pcm_s16le", "sample_rate": rate, "channels": channels}
    per_second = rate * channels * 2
    step = per_second // 5  # 200 ms chunks
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        on_edge = LiveHttp(session, c.edge, key=API_KEY)
        rec = await on_edge.start("onair", fmt)
        owner_pid = int(rec["live"]["owner"].rsplit(":", 1)[1])
        assert owner_pid in {o.proc.pid for o in c.origins}, rec["live"]
        # the producer pushes in real time while listeners read: a producer that fell
        # behind would get silence inserted (live.silence_after), changing the duration
        producer = asyncio.create_task(
            on_edge.push("onair", pcm, size=step, pace=per_second, lead=0.3))
        await asyncio.sleep(1.5)
        low = next(p for p in (await on_edge.media_playlists("onair")).values()
                   if "/low/" in p)
        for origin in c.origins:  # each origin directly: the owner, and one forwarding to it
            direct = LiveHttp(session, origin.base)
            res = await direct.get(low)
            assert res.status == 200, (origin.base, res.status, res.body)
            pl = check_live_media(res.text, target_duration=TARGET, audio=True)
            assert not pl.ended
            forwarded = VIA in res.headers.get("Via", "")
            assert forwarded == (origin.proc.pid != owner_pid), (origin.base, res.headers)
            msn, part = pl.progress  # a blocking reload: held until the next part lands
            res = await direct.get(low, params={"_HLS_msn": str(msn), "_HLS_part": str(part)},
                                   timeout=20)
            assert res.status == 200, (origin.base, res.status)
            after = check_live_media(res.text, target_duration=TARGET, previous=pl, audio=True)
            assert after.progress > pl.progress
            assert res.held < 2.0, res.held
        res = await on_edge.get(low)  # and through the edge
        assert res.status == 200
        assert not check_live_media(res.text, target_duration=TARGET, audio=True).ended
        assert not producer.done(), "the speech ended before the listeners read it live"
        await producer
        sealed = await on_edge.finish("onair")
        assert sealed["state"] == "ready"
        store = S3Store(c.store)
        try:  # sealed, as each origin serves it (the non-owner reads the store)
            for origin in c.origins:
                c.ready["onair"] = await check_sealed(
                    LiveHttp(session, origin.base), "onair", len(pcm) / per_second,
                    store=store if origin.proc.pid == owner_pid else None)
        finally:
            await store.close()
        # The edge may answer once more from what it cached live (the origin's short
        # max-age with stale-while-revalidate), then the sealed playlists
        want = (await LiveHttp(session, c.origins[0].base).get(low)).body
        deadline = time.monotonic() + 3 * TARGET
        while (res := await on_edge.get(low)).body != want:
            assert time.monotonic() < deadline, res.text
            await asyncio.sleep(0.2)
        assert "#EXT-X-ENDLIST" in res.text


async def test_vod_keeps_playing_through_the_edge_when_an_origin_stops(
        cluster: Cluster) -> None:
    c = cluster
    if "spare" not in c.ready:
        pytest.fail("needs the uploads of the first test", pytrace=False)
    gone, left = c.origins
    before = left.media_requests()
    gone.proc.send_signal(signal.SIGTERM)
    assert gone.proc.wait(timeout=30) == 0, gone.log.read_text()[-2000:]
    # "spare" was packaged but never asked of the edge: nothing of it is cached there, so
    # every object (and every access check) comes from the origin that is left
    rec = c.ready["spare"]
    crawl = await asyncio.to_thread(crawl_asset, c.edge, "spare", duration=rec["duration"])
    await _same_as_store(c, {p: r.body for p, r in crawl.objects.items()})
    assert left.media_requests() - before >= len(crawl.objects)
    for asset_id in ("talk", "onair"):  # what was played before still plays
        res = HttpClient(c.edge).get(f"/assets/{asset_id}/master.m3u8")
        assert res.status == 200, (asset_id, res.status)
