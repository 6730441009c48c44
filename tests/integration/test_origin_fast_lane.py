"""origin.fast_lane over a real socket: cached media answered from the connection, everything
else by aiohttp, in order, with the same bytes and headers either way.

Requests are written byte-exact on raw sockets (pipelined, split, malformed) and the
responses read back by Content-Length, so what is checked is what a client receives.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import pytest
from test_origin_support import ASSET, INIT, MEDIA_PLAYLIST, SEGMENT, publish

from origin.app import create_app
from origin.fast_lane import Lane
from signing.tokens import mint
from sori.config import Config, OriginConfig, SecurityConfig
from storage.base import Store

SEG = f"/assets/{ASSET}/{SEGMENT}"
INIT_URL = f"/assets/{ASSET}/{INIT}"
PLAYLIST = f"/assets/{ASSET}/{MEDIA_PLAYLIST}"
MASTER = f"/assets/{ASSET}/master.m3u8"


@dataclass
class Reply:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def reply(self, method: str = "GET") -> Reply:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        status_line, *lines = head[:-4].decode("latin-1").split("\r\n")
        _version, status, reason = status_line.split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines:
            k, _, v = line.partition(":")
            assert k.lower() not in headers, f"{k} sent twice"
            headers[k.lower()] = v.strip()
        length = int(headers.get("content-length", "0"))
        bodiless = method == "HEAD" or int(status) in (204, 304)
        body = b"" if bodiless else await asyncio.wait_for(self.reader.readexactly(length), 10)
        return Reply(int(status), reason, headers, body)

    async def closed(self) -> bool:
        return await asyncio.wait_for(self.reader.read(1), 10) == b""

    def close(self) -> None:
        self.writer.close()


def req(target: str, method: str = "GET", *extra: str, host: bool = True) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", *(["Host: test"] if host else []), *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class Origin:
    host: str
    port: int
    lane: Lane
    objects: dict[str, bytes]
    client: Any

    async def connect(self) -> Conn:
        return await _connect(self.host, self.port)

    async def warm(self, *targets: str) -> None:
        """Put objects in the media cache (the first request of each is a miss)."""
        for target in targets:
            async with self.client.get(target) as resp:
                assert resp.status == 200
                await resp.read()


def _origin(client: Any, objects: dict[str, bytes]) -> Origin:
    server = client.server
    return Origin(server.host, server.port, server.runner.server.lane, objects, client)


@pytest.fixture
async def origin(local_store: Store, origin_client: Any) -> Origin:
    objects = await publish(local_store)
    client = await origin_client(create_app(Config(), local_store))
    o = _origin(client, objects)
    await o.warm(SEG, INIT_URL)
    return o


async def test_a_hit_is_answered_by_the_lane_exactly_as_aiohttp_answers_it(
        local_store: Store, origin: Origin, aiohttp_client: Any) -> None:
    plain = await aiohttp_client(create_app(Config(), local_store))  # no fast lane
    async with plain.get(SEG) as r:
        await r.read()
    for method in ("GET", "HEAD"):
        before = origin.lane.answered
        conn = await origin.connect()
        await conn.send(req(SEG, method))
        fast = await conn.reply(method)
        conn.close()
        assert origin.lane.answered == before + 1
        conn = await _connect(plain.server.host, plain.server.port)
        await conn.send(req(SEG, method))
        slow = await conn.reply(method)
        conn.close()
        assert (fast.status, fast.reason) == (slow.status, slow.reason) == (200, "OK")
        fast.headers.pop("date"), slow.headers.pop("date")
        assert fast.headers == slow.headers
        assert fast.headers["content-length"] == str(len(origin.objects[SEGMENT]))
        assert fast.body == slow.body == (b"" if method == "HEAD" else origin.objects[SEGMENT])


async def _connect(host: str, port: int) -> Conn:
    reader, writer = await asyncio.open_connection(host, port)
    return Conn(reader, writer)


async def test_pipelined_requests_are_answered_in_order(origin: Origin) -> None:
    seg, init = origin.objects[SEGMENT], origin.objects[INIT]
    etag = (await _get_headers(origin, SEG))["etag"]
    conn = await origin.connect()
    start = origin.lane.answered
    batch = [
        (req(SEG), "GET", 200, seg),  # the lane
        (req(SEG, "GET", "Range: bytes=0-9"), "GET", 206, seg[:10]),  # aiohttp from here on
        (req(SEG, "HEAD"), "HEAD", 200, b""),
        (req("/healthz"), "GET", 200, None),
        (req(INIT_URL), "GET", 200, init),
        (req(SEG, "GET", f"If-None-Match: {etag}"), "GET", 304, b""),
        (req(SEG), "GET", 200, seg),
    ]
    await conn.send(b"".join(raw for raw, *_ in batch))
    for _raw, method, status, body in batch:
        reply = await conn.reply(method)
        assert reply.status == status
        if body is not None:
            assert reply.body == body
    # Only the first could go by the lane: the rest waited behind the Range request.
    assert origin.lane.answered == start + 1
    # Once aiohttp has answered everything, hits take the lane again on the same connection.
    await conn.send(req(INIT_URL) + req(SEG, "HEAD") + req(SEG))
    assert (await conn.reply()).body == init
    assert (await conn.reply("HEAD")).headers["content-length"] == str(len(seg))
    assert (await conn.reply()).body == seg
    assert origin.lane.answered == start + 4
    conn.close()


async def _get_headers(origin: Origin, target: str) -> dict[str, str]:
    conn = await origin.connect()
    await conn.send(req(target, "HEAD"))
    reply = await conn.reply("HEAD")
    conn.close()
    return reply.headers


async def test_heads_split_across_packets(origin: Origin) -> None:
    raw = req(SEG, "GET", "User-Agent: slow/1") + req(INIT_URL)
    conn = await origin.connect()
    start = origin.lane.answered
    pieces = [raw[:3], raw[3:17], raw[17:60], raw[60:-1], raw[-1:]]
    for piece in pieces:
        await conn.send(piece)
        await asyncio.sleep(0.01)
    assert (await conn.reply()).body == origin.objects[SEGMENT]
    assert (await conn.reply()).body == origin.objects[INIT]
    assert origin.lane.answered == start + 2
    conn.close()


async def test_a_request_with_content_hands_the_connection_to_aiohttp(origin: Origin) -> None:
    conn = await origin.connect()
    start = origin.lane.answered
    body = b"x" * 5000
    await conn.send(req(SEG, "POST", f"Content-Length: {len(body)}") + body + req(SEG))
    assert (await conn.reply()).status == 405
    assert (await conn.reply()).body == origin.objects[SEGMENT]  # answered by aiohttp
    await conn.send(req(SEG))
    assert (await conn.reply()).body == origin.objects[SEGMENT]
    assert origin.lane.answered == start
    conn.close()


@pytest.mark.parametrize("raw", [
    req(SEG, host=False),  # HTTP/1.1 without Host
    req(SEG, "GET", "Host: other"),  # two Hosts
    f"GET {SEG} HTTP/1.1\r\nHost: test\r\nX-A: 1\r\n folded\r\n\r\n".encode(),  # obs-fold
    f"GET {SEG} HTTP/1.1\nHost: test\n\n".encode(),  # bare LF
    f"GET {SEG} HTTP/1.1\r\nHost: test\r\nBad Name: 1\r\n\r\n".encode(),
    req(SEG, "GET", "Transfer-Encoding: chunked", "Content-Length: 3") + b"abc",  # smuggling
])
async def test_malformed_requests_get_aiohttps_400(origin: Origin, raw: bytes) -> None:
    conn = await origin.connect()
    start = origin.lane.answered
    await conn.send(raw)
    reply = await conn.reply()
    assert reply.status == 400
    assert origin.objects[SEGMENT][:64] not in reply.body
    assert origin.lane.answered == start
    conn.close()


@pytest.mark.parametrize("target", [
    f"/assets/{ASSET}/../{ASSET}/{SEGMENT}",
    f"/assets/{ASSET}/%2e%2e/{ASSET}/{SEGMENT}",
    f"/assets/{ASSET}//{SEGMENT}",
    f"/assets/{ASSET}/./{SEGMENT}",
    f"{SEG}?x=1",
    f"{SEG}%00",
    f"/assets/{ASSET}/asset.json",
])
async def test_other_spellings_of_a_cached_key_are_not_hits(origin: Origin, target: str) -> None:
    await origin.warm(f"/assets/{ASSET}/master.m3u8")
    conn = await origin.connect()
    start = origin.lane.answered
    await conn.send(req(target))
    reply = await conn.reply()
    conn.close()
    assert origin.lane.answered == start
    if target.endswith("?x=1"):  # a query does not change the object (aiohttp ignores it)
        assert reply.status == 200
    else:
        assert reply.status in (400, 404)


@pytest.mark.parametrize("extra", [
    "Range: bytes=5-",
    "If-Range: \"x\"",
    "If-Modified-Since: Thu, 01 Jan 2099 00:00:00 GMT",
    "If-Match: *",
    "Connection: close",
    "Expect: 100-continue",
])
async def test_requests_needing_a_decision_go_to_aiohttp(origin: Origin, extra: str) -> None:
    conn = await origin.connect()
    start = origin.lane.answered
    await conn.send(req(SEG, "GET", extra))
    reply = await conn.reply()
    if reply.status == 100:  # Expect: 100-continue gets its interim response first
        reply = await conn.reply()
    assert reply.status in (200, 206, 304, 412)
    assert origin.lane.answered == start
    if extra == "Connection: close":
        assert reply.body == origin.objects[SEGMENT]
        assert await conn.closed()
    conn.close()


async def test_http_1_0_goes_to_aiohttp(origin: Origin) -> None:
    conn = await origin.connect()
    start = origin.lane.answered
    await conn.send(f"GET {SEG} HTTP/1.0\r\n\r\n".encode())
    reply = await conn.reply()
    assert reply.status == 200 and reply.body == origin.objects[SEGMENT]
    assert await conn.closed()
    assert origin.lane.answered == start
    conn.close()


async def test_playlists_are_negotiated_by_aiohttp(origin: Origin) -> None:
    await origin.warm(PLAYLIST)
    conn = await origin.connect()
    start = origin.lane.answered
    await conn.send(req(PLAYLIST, "GET", "Accept-Encoding: gzip"))
    gz = await conn.reply()
    assert gz.headers["content-encoding"] == "gzip"
    assert origin.lane.answered == start
    await conn.send(req(PLAYLIST))  # no negotiation: identity, by the lane
    plain = await conn.reply()
    assert "content-encoding" not in plain.headers
    assert plain.body == origin.objects[MEDIA_PLAYLIST]
    assert plain.headers["vary"].startswith("Accept-Encoding")
    assert origin.lane.answered == start + 1
    conn.close()


async def test_a_reader_that_falls_behind_gets_every_byte_in_order(origin: Origin) -> None:
    """300 pipelined GETs (30 MB) written before a byte is read: the transport's buffer
    fills, the lane steps aside while writing is paused, and all replies arrive whole."""
    seg, init = origin.objects[SEGMENT], origin.objects[INIT]
    conn = await origin.connect()
    targets = [SEG if i % 3 else INIT_URL for i in range(300)]
    await conn.send(b"".join(req(t) for t in targets))
    await asyncio.sleep(0.5)
    for t in targets:
        reply = await conn.reply()
        assert reply.status == 200
        assert reply.body == (seg if t == SEG else init)
    conn.close()


async def test_lane_hits_are_counted_and_logged(origin: Origin,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sori.access")

    async def metric(name: str) -> float:
        async with origin.client.get("/metrics") as resp:
            text = await resp.text()
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return 0.0

    hits = await metric("sori_cache_hits_total")
    ok = await metric('sori_http_requests_total{route="media",status="200"}')
    sent = await metric('sori_http_response_bytes_total{route="media"}')
    conn = await origin.connect()
    start = origin.lane.answered
    await conn.send(req(SEG, "GET", "User-Agent: lane-test/1") + req(SEG, "HEAD"))
    await conn.reply()
    await conn.reply("HEAD")
    conn.close()
    assert origin.lane.answered == start + 2
    assert await metric("sori_cache_hits_total") == hits + 2
    assert await metric('sori_http_requests_total{route="media",status="200"}') == ok + 2
    assert (await metric('sori_http_response_bytes_total{route="media"}')
            == sent + len(origin.objects[SEGMENT]))
    origin.lane.access_log.flush()  # lines are written in batches
    lines = [line for r in caplog.records if r.name == "sori.access"
             for line in r.getMessage().splitlines() if "lane-test/1" in line]
    assert len(lines) == 1
    assert f'"path":"{SEG}"' in lines[0] and '"cache":"hit"' in lines[0]
    assert '"status":200' in lines[0] and '"remote":"127.0.0.1"' in lines[0]


async def test_listed_cors_origins_are_echoed_by_aiohttp(local_store: Store,
                                                         origin_client: Any) -> None:
    objects = await publish(local_store)
    cfg = Config(origin=dataclasses.replace(OriginConfig(), cors_origins=("https://a.example",)))
    o = _origin(await origin_client(create_app(cfg, local_store)), objects)
    await o.warm(SEG)
    conn = await o.connect()
    await conn.send(req(SEG, "GET", "Origin: https://a.example"))
    with_origin = await conn.reply()
    # aiohttp's task ends only after its last byte is out (it awaits the drain), and a
    # request arriving before that waits in line behind it: give it a moment.
    await asyncio.sleep(0.2)
    await conn.send(req(SEG))
    without = await conn.reply()
    conn.close()
    assert with_origin.headers["access-control-allow-origin"] == "https://a.example"
    assert "access-control-allow-origin" not in without.headers
    assert with_origin.headers["vary"] == without.headers["vary"] == "Origin"
    assert o.lane.answered == 1  # only the request without Origin


@pytest.mark.parametrize("target", ["/", "/?asset=talk-1", "/player/app.js",
                                    "/player/style.css", "/vendor/hls.min.js"])
@pytest.mark.parametrize("encoding", [None, "gzip, deflate, br"])
async def test_page_files_are_answered_by_the_lane_as_aiohttp_answers_them(
        local_store: Store, origin: Origin, aiohttp_client: Any, target: str,
        encoding: str | None) -> None:
    plain = await aiohttp_client(create_app(Config(), local_store))  # no fast lane
    extra = [f"Accept-Encoding: {encoding}"] if encoding else []
    replies = []
    for host, port in ((origin.host, origin.port), (plain.server.host, plain.server.port)):
        for method in ("GET", "HEAD"):
            conn = await _connect(host, port)
            start = origin.lane.answered
            await conn.send(req(target, method, *extra))
            replies.append(await conn.reply(method))
            conn.close()
            if port == origin.port:
                assert origin.lane.answered == start + 1
    for fast, slow in ((replies[0], replies[2]), (replies[1], replies[3])):
        assert fast.status == slow.status == 200
        fast.headers.pop("date"), slow.headers.pop("date")
        assert fast.headers == slow.headers
        assert fast.body == slow.body
    assert replies[0].headers.get("content-encoding") == ("gzip" if encoding else None)
    assert len(replies[0].body) == int(replies[0].headers["content-length"])


async def test_a_page_revalidation_goes_to_aiohttp(origin: Origin) -> None:
    conn = await origin.connect()
    await conn.send(req("/player/app.js"))
    first = await conn.reply()
    start = origin.lane.answered
    await conn.send(req("/player/app.js", "GET", f"If-None-Match: {first.headers['etag']}"))
    again = await conn.reply()
    conn.close()
    assert again.status == 304 and origin.lane.answered == start


async def test_a_missing_vendor_file_is_left_to_aiohttps_404(
        origin: Origin, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from origin import pages

    monkeypatch.setattr(pages, "NODE_MODULES", tmp_path / "node_modules")
    conn = await origin.connect()
    start = origin.lane.answered
    await conn.send(req("/vendor/hls.min.js"))
    reply = await conn.reply()
    conn.close()
    assert reply.status == 404 and b"make demo" in reply.body
    assert origin.lane.answered == start


# --- private assets: signed URLs in the lane ---------------------------------------------------

async def test_signed_urls_of_a_private_asset_in_the_lane(local_store: Store,
                                                          origin_client: Any) -> None:
    keys = {"k1": "a-signing-secret-for-tests-0001"}
    objects = await publish(local_store)
    rec = json.loads(await local_store.get(f"{ASSET}/asset.json"))
    await local_store.put_bytes(f"{ASSET}/asset.json",
                                json.dumps({**rec, "access": "private"}).encode(),
                                "application/json")
    cfg = dataclasses.replace(Config(), security=dataclasses.replace(
        SecurityConfig(), signing_keys=keys, token_failures_per_minute=0))
    client = await origin_client(create_app(cfg, local_store))
    o = _origin(client, objects)
    token = mint(keys, expires=int(time.time()) + 100, asset=ASSET)
    signed = f"/assets/{ASSET}/~{token}/{SEGMENT}"
    await o.warm(signed)
    conn = await o.connect()
    before = o.lane.answered
    await conn.send(req(signed) + req(SEG) + req(f"/assets/{ASSET}/~x.y/{SEGMENT}"))
    first, unsigned, forged = [await conn.reply() for _ in range(3)]
    await conn.send(req(signed))  # alone: the lane answers only when aiohttp has nothing
    again = await conn.reply()
    conn.close()
    assert (first.status, again.status) == (200, 200)
    assert first.body == again.body == objects[SEGMENT]
    assert o.lane.answered == before + 2  # the two signed requests; aiohttp refused the others
    assert unsigned.status == forged.status == 403 and unsigned.body.startswith(b'{"error"')
    max_age = int(first.headers["cache-control"].split("max-age=")[1].split(",")[0])
    assert 95 <= max_age <= 100 and "immutable" in first.headers["cache-control"]
    # The same answer aiohttp gives (what the lane skips is exactly the bookkeeping).
    async with client.get(signed, headers={"Range": "bytes=0-"}) as resp:
        assert resp.status == 206 and await resp.read() == objects[SEGMENT]
