"""Blocking playlist requests parked on a live stream and answered together
(origin/live/parking.py), over real sockets: espeak-ng speech pushed in real time into the
origin (in process, behind the fast lane as `sori serve` runs it) while raw HTTP/1.1
connections ask for parts that do not exist yet.

- many parked requests, in every variant (gzip or not, a delta update or not, CORS
  Origin), all get a 200 with the playlist that holds their part, byte-identical within a
  variant and to what the ordinary path (HTTP/1.0, `Connection: close`, HEAD) answers
  for the same part, with the same headers;
- on one keep-alive connection, pipelined requests (blocking, plain, blocking) are
  answered in order, and the connection stays usable;
- clients that leave while parked (FIN or RST) cost one skipped write: the others get
  their answers, nothing is left parked, and the origin keeps answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from llhls_rules import MediaPlaylist, check_live_media, parse_media
from test_live_support import (
    ENCODINGS,
    TARGET,
    LiveHttp,
    encode,
    in_process,
    live_config,
    make_speech,
)

from origin.app import MEDIA_KEY
from origin.keys import LIVE_KEY
from storage.local import LocalStore

BLOCKING_CC = f"public, max-age={6 * TARGET}"


@dataclass
class Answer:
    status: int
    head: list[tuple[str, str]]  # header fields in order, names lower-cased
    body: bytes
    at: float  # time.monotonic() when the head was in

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.head if k == name), None)

    def fields(self) -> dict[str, str]:
        """Every field but those that differ from one response to the next."""
        return {k: v for k, v in self.head if k not in ("date", "connection")}

    @property
    def text(self) -> str:
        body = self.body
        if self.header("content-encoding") == "gzip":
            body = gzip.decompress(body)
        return body.decode()


def request(path: str, *, method: str = "GET", version: str = "1.1",
            fields: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (fields or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_answer(reader: asyncio.StreamReader, method: str = "GET") -> Answer:
    raw = await reader.readuntil(b"\r\n\r\n")
    at = time.monotonic()
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    head = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            head.append((name.strip().lower(), value.strip()))
    length = int(next(v for k, v in head if k == "content-length"))
    body = b"" if method == "HEAD" else await reader.readexactly(length)
    return Answer(status, head, body, at)


def has_part(pl: MediaPlaylist, msn: int, part: int) -> bool:
    return pl.next_msn > msn or (pl.next_msn == msn and len(pl.trailing_parts) > part)


@dataclass
class Live:
    port: int
    path: str  # the low rung's media playlist
    app: Any
    http: LiveHttp
    pusher: asyncio.Task[int]

    def lot_count(self) -> int:
        serving = self.app[MEDIA_KEY].live_serving
        stream = self.app[LIVE_KEY].streams["crowd"]
        lot = serving._lots.get(stream)
        return 0 if lot is None else lot.count

    async def ahead(self) -> tuple[int, int]:
        """A part at least two parts past the live edge (msn, part)."""
        res = await self.http.get(self.path)
        assert res.status == 200, res.status
        pl = parse_media(res.text)
        return pl.next_msn + 1, 1

    async def parked(self, n: int, seconds: float = 5.0) -> None:
        deadline = time.monotonic() + seconds
        while self.lot_count() < n:
            assert time.monotonic() < deadline, (self.lot_count(), n)
            await asyncio.sleep(0.005)


@pytest.fixture
async def live(tmp_path: Any, origin_client: Any) -> AsyncIterator[Live]:
    speech = make_speech(tmp_path / "speech.wav", minimum=5.0)
    store = LocalStore(tmp_path / "media")
    client, base = await in_process(origin_client, store, live_config(tmp_path))
    http = LiveHttp(client.session, base)
    await http.start("crowd", ENCODINGS["pcm_22k"][1])
    pcm = encode(speech, "pcm_22k") * 4  # ~25 s, pushed in real time
    rate = 2 * 22050
    pusher = asyncio.create_task(http.push("crowd", pcm, size=rate // 5, pace=rate, lead=0.2))
    path = (await http.media_playlists("crowd"))["low"]
    while True:  # a first whole segment
        pl = parse_media((await http.get(path)).text)
        if pl.segments:
            break
        await asyncio.sleep(0.05)
    try:
        yield Live(client.server.port, path, client.server.app, http, pusher)
    finally:
        if pusher.done() and not pusher.cancelled():
            pusher.result()  # every chunk was taken
        else:
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pusher
        await http.end("crowd")


async def test_many_parked_requests_get_their_playlist_in_every_variant(live: Live) -> None:
    msn, part = await live.ahead()
    query = f"{live.path}?_HLS_msn={msn}&_HLS_part={part}"
    variants: list[tuple[str, dict[str, str]]] = [
        ("identity", {}),
        ("gzip", {"Accept-Encoding": "gzip"}),
        ("skip", {"Accept-Encoding": "gzip"}),
        ("cors", {"Origin": "https://player.example"}),
    ]
    per_variant = 60
    conns = []
    for name, fields in variants:
        target = query + ("&_HLS_skip=YES" if name == "skip" else "")
        for _ in range(per_variant):
            reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
            writer.write(request(target, fields=fields))
            conns.append((name, target, fields, reader, writer))
    # the ordinary path, parked beside them: HTTP/1.0, Connection: close, HEAD
    ordinary = []
    for how in ("1.0", "close", "HEAD"):
        reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
        writer.write(request(query, method="HEAD" if how == "HEAD" else "GET",
                             version="1.0" if how == "1.0" else "1.1",
                             fields={"Connection": "close"} if how == "close" else {}))
        ordinary.append((how, reader, writer))
    await live.parked(len(conns) + len(ordinary))
    answers: dict[str, list[Answer]] = {}
    for name, _target, _fields, reader, _writer in conns:
        answers.setdefault(name, []).append(await asyncio.wait_for(read_answer(reader), 10))
    plain = {how: await asyncio.wait_for(read_answer(reader, "HEAD" if how == "HEAD" else "GET"),
                                         10) for how, reader, _w in ordinary}
    for name, got in answers.items():
        first = got[0]
        assert first.status == 200, (name, first.status, first.body)
        assert all(a.body == first.body and a.fields() == first.fields() for a in got), name
        assert first.header("cache-control") == BLOCKING_CC
        assert first.header("content-type") == "application/vnd.apple.mpegurl"
        assert (first.header("content-encoding") == "gzip") == (name in ("gzip", "skip")), name
        assert first.header("access-control-allow-origin") is not None
        pl = check_live_media(first.text, target_duration=TARGET, audio=True)
        assert has_part(pl, msn, part), (name, msn, part, pl.next_msn, len(pl.trailing_parts))
    assert answers["gzip"][0].text == answers["identity"][0].text
    assert answers["cors"][0].text == answers["identity"][0].text
    # The ordinary path answers the same part with the same bytes and fields (a part
    # landing between the release and its resumption would make it a later playlist).
    same = answers["identity"][0]
    for how, ans in plain.items():
        assert ans.status == 200, (how, ans.status)
        assert ans.fields() == same.fields(), how
        if how != "HEAD" and ans.body != same.body:
            assert has_part(parse_media(ans.text), msn, part + 1), how
    assert live.lot_count() == 0
    for *_, writer in conns:
        writer.close()


async def test_pipelined_requests_on_one_connection_keep_their_order(live: Live) -> None:
    msn, part = await live.ahead()
    asset = live.path.split("/v/")[0]
    reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
    gz = {"Accept-Encoding": "gzip"}
    writer.write(request(f"{live.path}?_HLS_msn={msn}&_HLS_part={part}", fields=gz)
                 + request(f"{asset}/master.m3u8")
                 + request(f"{live.path}?_HLS_msn={msn}&_HLS_part={part + 1}")
                 + request(live.path, fields=gz))
    first = await asyncio.wait_for(read_answer(reader), 10)
    master = await asyncio.wait_for(read_answer(reader), 10)
    second = await asyncio.wait_for(read_answer(reader), 10)
    plain = await asyncio.wait_for(read_answer(reader), 10)
    assert [a.status for a in (first, master, second, plain)] == [200] * 4
    assert has_part(parse_media(first.text), msn, part)
    assert "#EXT-X-STREAM-INF" in master.text
    assert has_part(parse_media(second.text), msn, part + 1)
    assert second.header("cache-control") == BLOCKING_CC
    assert has_part(parse_media(plain.text), msn, part + 1)
    assert first.at <= master.at <= second.at <= plain.at
    # the connection is still good for the next blocking request
    msn, part = await live.ahead()
    writer.write(request(f"{live.path}?_HLS_msn={msn}&_HLS_part={part}"))
    again = await asyncio.wait_for(read_answer(reader), 10)
    assert again.status == 200 and has_part(parse_media(again.text), msn, part)
    writer.close()


async def test_clients_that_leave_while_parked_cost_nothing(live: Live) -> None:
    msn, part = await live.ahead()
    target = f"{live.path}?_HLS_msn={msn}&_HLS_part={part}"
    conns = []
    for _ in range(90):
        reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
        writer.write(request(target, fields={"Accept-Encoding": "gzip"}))
        conns.append((reader, writer))
    await live.parked(len(conns))
    leaving, staying = conns[:60], conns[60:]
    for i, (_reader, writer) in enumerate(leaving):
        if i % 2:  # an abrupt reset rather than a FIN
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()
    got = [await asyncio.wait_for(read_answer(reader), 10) for reader, _w in staying]
    assert all(a.status == 200 and a.body == got[0].body for a in got)
    assert has_part(parse_media(got[0].text), msn, part)
    assert live.lot_count() == 0
    assert not live.app[MEDIA_KEY].live_serving._lots  # the watcher went when the lot emptied
    # the origin goes on answering, on the connections that stayed and on new ones
    msn, part = await live.ahead()
    reader, writer = staying[0]
    writer.write(request(f"{live.path}?_HLS_msn={msn}&_HLS_part={part}"))
    again = await asyncio.wait_for(read_answer(reader), 10)
    assert again.status == 200 and has_part(parse_media(again.text), msn, part)
    res = await live.http.get(live.path)
    assert res.status == 200
    for _reader, writer in staying:
        writer.close()


async def test_parked_requests_when_the_stream_ends(live: Live) -> None:
    msn, part = await live.ahead()
    target = f"{live.path}?_HLS_msn={msn}&_HLS_part={part}"
    conns = []
    for _ in range(20):
        reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
        writer.write(request(target))
        conns.append((reader, writer))
    await live.parked(len(conns))
    live.pusher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await live.pusher
    ended = asyncio.create_task(live.http.end("crowd"))
    got = [await asyncio.wait_for(read_answer(reader), 30) for reader, _w in conns]
    # each gets the sealed playlist or, while it is being sealed, a 503; none hangs
    assert all(a.status in (200, 503) for a in got), [a.status for a in got]
    for a in got:
        if a.status == 200:
            assert parse_media(a.text).ended
    assert (await ended).status == 200
    for _reader, writer in conns:
        writer.close()
