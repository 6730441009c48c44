"""Serving a live asset: LL-HLS playlists with blocking reload, parts as they land, the
segment in progress with chunked transfer (LL-DASH), the dynamic MPD.

Called by origin.media for an asset this process is producing; anything it does not
answer (init segments, completed segments, parts no longer in memory) falls through to
the store like any immutable object. Cache-Control by class, from RFC 8216bis
appendix B.1 (the LL-HLS server profile): blocking playlist responses 6 target
durations (the query is in a CDN's cache key, so they are shareable), their errors 4;
plain live playlist responses half a target duration, their errors one; parts and
segments immutable; the multivariant playlist and the MPD half a target duration.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import TYPE_CHECKING, Any

from aiohttp import ClientConnectionResetError, HttpVersion11, web

from manifests import layout
from manifests.dash_live import LiveText, live_mpd
from manifests.llhls import live_subtitles_playlist, media_playlist
from origin.errors import json_error
from origin.fast_lane import HttpDate, wire_headers
from origin.http import headers as h
from origin.http.representation import accepts_gzip, compress
from origin.keys import BYTES_SENT, STREAMING
from origin.live.parking import GONE, ORDINARY, TIMED_OUT, Key, Sent, StreamLot, Waiter
from storage.content_types import content_type_for

if TYPE_CHECKING:
    from origin.http.cors import CorsPolicy
    from packager.live.plan import LivePlan
    from packager.live.registry import LiveRegistry
    from packager.live.stream import LiveStream
    from packager.live.track import RungState

_RENDITION_FILE = re.compile(r"v/([0-9a-z]{1,40})/([A-Za-z0-9_-]{1,32})/(.+)")
_PART = re.compile(r"seg_(\d{5})\.(\d+)\.m4s")
_SEGMENT = re.compile(r"seg_(\d{5})\.m4s")
_SUBTITLE_SEGMENT = re.compile(r"seg_(\d{5})\.vtt")
_STATUS_200 = b"HTTP/1.1 200 OK\r\n"
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
MPD_TYPE = "application/dash+xml"


class LiveServing:
    def __init__(self, registry: LiveRegistry, cors: CorsPolicy, public_url: str) -> None:
        self.registry = registry
        self.cors = cors
        self.public_url = public_url.rstrip("/")
        self._gz: dict[tuple[str, int, bool], tuple[int, bytes]] = {}
        self._lots: dict[LiveStream, StreamLot] = {}  # blocking reloads parked, by stream
        self._date = HttpDate()

    def _cc(self, stream: LiveStream, factor: float) -> str:
        seconds = max(1, int(stream.plan.target_duration * factor))
        return f"public, max-age={seconds}"

    def _error(self, request: web.Request, stream: LiveStream, status: int, message: str,
               factor: float) -> web.Response:
        resp = json_error(status, message)
        resp.headers[h.CACHE_CONTROL] = (self._cc(stream, factor) if status < 500
                                         else h.NO_STORE)
        if status == 503:
            resp.headers[h.RETRY_AFTER] = "1"
        self.cors.apply(request, resp)
        return resp

    async def answer(self, request: web.Request, stream: LiveStream,
                     rel: str) -> web.StreamResponse | None:
        """The response for `rel` of a live asset, or None to serve it from the store."""
        if stream.state == "ready":
            return self._after_end(request, stream, rel)
        if rel == layout.MASTER:
            return self._text(request, self.registry.master_text(
                stream.version, stream.captions is not None), PLAYLIST_TYPE, self._cc(stream, 0.5))
        if rel == layout.MPD:
            if stream.start is None and not stream.ended.is_set():
                # availabilityStartTime is the first word's wall clock: give it a moment
                # to arrive rather than announce a clock the stream will not keep.
                await stream.wait_change(stream.plan.target_duration)
            return self._text(request, self._mpd(request, stream), MPD_TYPE,
                              self._cc(stream, 0.5))
        m = _RENDITION_FILE.fullmatch(rel)
        if m is None or m.group(1) != stream.version:
            return None
        if m.group(2) == layout.SUBTITLES_DIR and stream.captions is not None:
            # its WebVTT segments come from the store, where they are written once whole
            if m.group(3) == layout.MEDIA_PLAYLIST:
                return await self._subtitles(request, stream)
            if vm := _SUBTITLE_SEGMENT.fullmatch(m.group(3)):
                return await self._subtitle_segment(request, stream, int(vm.group(1)))
            return None
        index = next((i for i, st in enumerate(stream.rungs_state)
                      if st.rung_id == m.group(2)), None)
        if index is None:
            return None
        name = m.group(3)
        if name == layout.MEDIA_PLAYLIST:
            return await self._playlist(request, stream, index)
        if pm := _PART.fullmatch(name):
            return await self._part(request, stream, index, rel, int(pm.group(1)),
                                    int(pm.group(2)))
        if sm := _SEGMENT.fullmatch(name):
            return await self._segment(request, stream, index, int(sm.group(1)))
        return None

    def _after_end(self, request: web.Request, stream: LiveStream,
                   rel: str) -> web.StreamResponse | None:
        """Sealed: the store holds the VOD form of everything. A segment past the end
        (a DASH client computing the next one from the clock before it rereads the MPD)
        is a 404 that no cache keeps, so its retry sees the static MPD instead."""
        m = _RENDITION_FILE.fullmatch(rel)
        if m is None or m.group(1) != stream.version:
            return None
        st = next((st for st in stream.rungs_state if st.rung_id == m.group(2)), None)
        found = _SEGMENT.fullmatch(m.group(3)) or _PART.fullmatch(m.group(3))
        if st is None or found is None or int(found.group(1)) < st.next_number:
            return None
        resp = json_error(404, "the stream has ended: this segment will never exist")
        resp.headers[h.CACHE_CONTROL] = h.NO_STORE
        self.cors.apply(request, resp)
        return resp

    # --- playlists ---------------------------------------------------------------------

    async def _playlist(self, request: web.Request, stream: LiveStream,
                        index: int) -> web.StreamResponse | None:
        q = request.query
        try:
            msn = _non_negative(q.get("_HLS_msn"))
            part = _non_negative(q.get("_HLS_part"))
        except ValueError:
            return self._error(request, stream, 400, "_HLS_msn and _HLS_part must be "
                               "non-negative integers", 1)
        skip = q.get("_HLS_skip") in ("YES", "v2")
        blocking = msn is not None
        if part is not None and msn is None:
            return self._error(request, stream, 400, "_HLS_part needs _HLS_msn", 4)
        st = stream.rungs_state[index]
        if blocking:
            assert msn is not None
            last = st.next_number if st.open_parts else max(1, st.next_number - 1)
            if msn > last + 2:
                return self._error(request, stream, 400,
                                   f"_HLS_msn={msn} is too far ahead of the live edge "
                                   f"(last {last})", 4)
            if not (stream.ended.is_set() or _has(stream, index, msn, part)):
                outcome = await self._park(request, stream, (index, msn, part), skip)
                if outcome >= 0 or outcome == GONE:
                    request[BYTES_SENT] = max(0, outcome)
                    return Sent()
                if outcome == TIMED_OUT or not (stream.ended.is_set()
                                                or _has(stream, index, msn, part)):
                    return self._error(request, stream, 503, "the requested part did not "
                                       "appear within three target durations", 4)
        elif not st.segments and not stream.ended.is_set():
            # Before the first whole segment (the first part: packager.live.plan) the
            # playlist holds no segment, which players take as an error and retry a second
            # or two later; the first word is a fraction of a second away: wait for it.
            deadline = time.monotonic() + stream.plan.target_duration
            while not st.segments and not stream.ended.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                await stream.wait_change(left)
        if stream.state == "ready":
            return None
        if stream.ended.is_set() and stream.state != "live":
            return self._error(request, stream, 503, "the stream is being sealed", 1)
        # a playlist without a segment must not linger in any cache
        cache_control = ("no-cache" if not st.segments
                         else self._cc(stream, 6 if blocking else 0.5))
        return self._playlist_response(request, stream, index, skip, cache_control)

    async def _subtitles(self, request: web.Request,
                         stream: LiveStream) -> web.StreamResponse | None:
        """The live WebVTT playlist (issue 14); `_HLS_msn=N` waits until segment N is
        listed (any `_HLS_part` is ignored: the playlist has no parts)."""
        try:
            msn = _non_negative(request.query.get("_HLS_msn"))
        except ValueError:
            return self._error(request, stream, 400, "_HLS_msn must be a non-negative integer", 1)
        blocking = msn is not None
        if msn is not None:
            last = stream.rungs_state[0].next_number
            if msn > last + 2:
                return self._error(request, stream, 400, f"_HLS_msn={msn} is too far ahead of "
                                   f"the live edge (last {last})", 4)
            if not await _subtitles_up_to(stream, msn, 3 * stream.plan.target_duration):
                return self._error(request, stream, 503, "the requested segment did not "
                                   "appear within three target durations", 4)
        if stream.state == "ready":
            return None  # sealed: the store has the VOD playlist
        if stream.ended.is_set() and stream.state != "live":
            return self._error(request, stream, 503, "the stream is being sealed", 1)
        st = stream.rungs_state[0]
        text = live_subtitles_playlist(
            (st.segments[i].duration / st.rate for i in range(stream.subs_ready)),
            stream.timing())
        cache_control = ("no-cache" if not stream.subs_ready
                         else self._cc(stream, 6 if blocking else 0.5))
        return self._text(request, text, PLAYLIST_TYPE, cache_control)

    async def _subtitle_segment(self, request: web.Request, stream: LiveStream,
                                number: int) -> web.StreamResponse | None:
        """A WebVTT segment asked for before it is written (a DASH client addressing it by
        the clock, as for the media: the MPD's text AdaptationSet) is held until it is,
        as the segment in progress is for the media; then the store answers."""
        st = stream.rungs_state[0]
        if number <= stream.subs_ready or number > st.next_number + 1:
            return None
        wait = float(4 * stream.plan.target_duration + stream.plan.segment)
        if not await _subtitles_up_to(stream, number, wait):
            return self._error(request, stream, 503, "the subtitles segment did not "
                               "appear in time", 1)
        return None

    async def _park(self, request: web.Request, stream: LiveStream, key: Key,
                    skip: bool) -> int:
        """Wait (parked: origin.live.parking) for the part `key` asks for, up to three
        target durations; the body bytes written for it, or GONE, TIMED_OUT, ORDINARY."""
        lot = self._lots.get(stream)
        if lot is None:
            lot = self._lots[stream] = StreamLot(stream, self._release, self._idle)
        gz = accepts_gzip(request.headers.get(h.ACCEPT_ENCODING))
        origin = (self.cors.allow_origin(request.headers.get(h.ORIGIN)) if self.cors.enabled
                  else None)
        direct = (request.method == "GET" and request.version == HttpVersion11
                  and request.keep_alive)
        deadline = asyncio.get_running_loop().time() + 3 * stream.plan.target_duration
        waiter = lot.park(request, key, (skip, gz, origin), direct, deadline)
        try:
            return await waiter.future
        finally:
            if not waiter.future.done():  # the handler was cancelled
                lot.drop(key, waiter, GONE)

    def _idle(self, lot: StreamLot) -> None:
        if self._lots.get(lot.stream) is lot:
            del self._lots[lot.stream]

    def _release(self, stream: LiveStream, index: int, waiters: list[Waiter]) -> None:
        """Answer the parked requests a part satisfies: each variant's response (status
        line, headers, body) is made once, then written to every waiting connection in
        one pass; the handlers resume afterwards, only to be counted and logged."""
        st = stream.rungs_state[index]
        cache_control = "no-cache" if not st.segments else self._cc(stream, 6)
        wires: dict[tuple[Any, ...], tuple[bytes, int]] = {}
        results: list[int] = []
        for w in waiters:
            if not w.direct:
                results.append(ORDINARY)
                continue
            transport = w.transport
            if transport is None or transport.is_closing():
                results.append(GONE)
                continue
            wire = wires.get(w.variant)
            if wire is None:
                wire = wires[w.variant] = self._wire(w.request, stream, index, w.variant[0],
                                                     cache_control)
            transport.write(wire[0])
            results.append(wire[1])
        for w, result in zip(waiters, results, strict=True):
            w.settle(result)

    def _wire(self, request: web.Request, stream: LiveStream, index: int, skip: bool,
              cache_control: str) -> tuple[bytes, int]:
        """The 200 `_playlist_response` makes for `request`, as bytes on the wire."""
        resp = self._playlist_response(request, stream, index, skip, cache_control)
        body = resp.body
        assert isinstance(body, bytes)
        fields = {k: v for k, v in resp.headers.items() if k != h.CONTENT_LENGTH}
        return b"".join((_STATUS_200, self._date.line(), wire_headers(fields, len(body)),
                         b"\r\n", body)), len(body)

    def _render(self, stream: LiveStream, index: int, skip: bool) -> str:
        track = stream.track(index)
        reports = []
        for j, other in enumerate(stream.rungs_state):
            if j != index:
                reports.append((f"../{other.rung_id}/{layout.MEDIA_PLAYLIST}", stream.track(j)))
        return media_playlist(track, stream.timing(), reports=reports, skip=skip,
                              parts_per_segment=stream.plan.parts_in(track.next_number))

    def _playlist_response(self, request: web.Request, stream: LiveStream, index: int,
                           skip: bool, cache_control: str) -> web.Response:
        text = stream.playlist_text(index, skip, lambda i, s: self._render(stream, i, s))
        headers = {h.CONTENT_TYPE: PLAYLIST_TYPE, h.CACHE_CONTROL: cache_control,
                   h.VARY: h.ACCEPT_ENCODING}
        if accepts_gzip(request.headers.get(h.ACCEPT_ENCODING)):
            key = (stream.asset_id, index, skip)
            cached = self._gz.get(key)
            if cached is None or cached[0] != stream.published_parts:
                cached = (stream.published_parts, compress(text.encode()))
                self._gz[key] = cached
            headers[h.CONTENT_ENCODING] = h.GZIP
            resp = web.Response(body=cached[1], headers=headers)
        else:
            resp = web.Response(body=text.encode(), headers=headers)
        self.cors.apply(request, resp)
        return resp

    def _text(self, request: web.Request, text: str, ctype: str,
              cache_control: str) -> web.Response:
        headers = {h.CONTENT_TYPE: ctype, h.CACHE_CONTROL: cache_control,
                   h.VARY: h.ACCEPT_ENCODING}
        body = text.encode()
        if accepts_gzip(request.headers.get(h.ACCEPT_ENCODING)):
            body = compress(body)
            headers[h.CONTENT_ENCODING] = h.GZIP
        resp = web.Response(body=body, headers=headers)
        self.cors.apply(request, resp)
        return resp

    def _mpd(self, request: web.Request, stream: LiveStream) -> str:
        base = self.public_url or f"{request.scheme}://{request.host}"
        plan = stream.plan
        start = stream.start if stream.start is not None else stream.created
        rec = self.registry.records.get(stream.asset_id, {})
        timelines = {st.rung_id: _spans(st, plan) for st in stream.rungs_state}
        return live_mpd(self.registry.representations(stream.version), start=start,
                        published=time.time(), segment=float(plan.segment),
                        part=float(plan.part),
                        latency_target=float(plan.part_target) * 3 + float(plan.part),
                        utc_url=f"{base}/v1/time", title=str(rec.get("title", "")),
                        timelines=timelines, text=_live_text(stream))

    # --- parts and the segment in progress ---------------------------------------------

    async def _part(self, request: web.Request, stream: LiveStream, index: int, rel: str,
                    number: int, k: int) -> web.StreamResponse | None:
        st = stream.rungs_state[index]
        if k >= stream.plan.parts_in(number):
            return None  # no such part: the store answers 404
        wanted = stream.plan.first_part_of(number) + k
        if wanted >= stream.published_parts:
            # A preload hint (or a player a little ahead): wait for the part to exist,
            # then send it at link speed. Further than the next segment is a 404.
            if wanted > stream.published_parts + 2 * stream.plan.parts_per_segment:
                return None
            deadline = time.monotonic() + 3 * stream.plan.target_duration
            while wanted >= stream.published_parts and not stream.ended.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return self._error(request, stream, 503, "the part did not appear in time",
                                       1)
                await stream.wait_change(left)
        data = st.recent.get(f"{st.dir}/{layout.part_name(number, k)}")
        if data is None:
            return None
        return self._bytes(request, rel, data)

    def _bytes(self, request: web.Request, rel: str, data: bytes) -> web.Response:
        resp = web.Response(body=data, headers={
            h.CONTENT_TYPE: content_type_for(rel), h.CACHE_CONTROL: h.IMMUTABLE,
            h.ACCEPT_RANGES: h.BYTES})
        self.cors.apply(request, resp)
        return resp

    async def _segment(self, request: web.Request, stream: LiveStream, index: int,
                       number: int) -> web.StreamResponse | None:
        """A segment still being produced goes out part by part as the parts land
        (chunked transfer: low-latency DASH); a completed one comes from the store."""
        st = stream.rungs_state[index]
        if number < st.next_number:
            return None
        if number > st.next_number + 1:
            return self._error(request, stream, 404, "that segment is not being produced "
                               "yet (check the clock: GET /v1/time)", 0.5)
        if request.headers.get(h.RANGE) or request.method == "HEAD":
            return None  # ranges of a segment in progress make no sense; the store 404s
        first = stream.plan.first_part_of(number)
        deadline = time.monotonic() + 3 * stream.plan.target_duration + stream.plan.segment
        while stream.published_parts <= first and not stream.ended.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return self._error(request, stream, 503, "the segment did not start in time", 1)
            await stream.wait_change(left)
        if stream.published_parts <= first:
            return None
        resp = web.StreamResponse(headers={
            h.CONTENT_TYPE: content_type_for(layout.segment_name(number)),
            h.CACHE_CONTROL: h.IMMUTABLE})
        self.cors.apply(request, resp)
        resp.enable_chunked_encoding()
        sent = 0
        try:
            await resp.prepare(request)
            request[STREAMING] = True
            k = 0
            while True:
                rel = st.part_rel(number, k)
                data = st.recent.get(rel)
                if data is not None:
                    await resp.write(data)
                    sent += len(data)
                    k += 1
                    if _segment_done(stream, index, number, k):
                        break
                    continue
                if _segment_done(stream, index, number, k) or stream.state == "failed":
                    break
                if not await stream.wait_change(3 * stream.plan.target_duration):
                    raise ConnectionResetError("the live segment stopped growing")
                if stream.ended.is_set() and st.recent.get(st.part_rel(number, k)) is None:
                    break
            await resp.write_eof()
        except ClientConnectionResetError:
            # The client left (an ABR switch, a seek, its own timeout): routine for a
            # segment that takes a segment's duration to send, so no error and no
            # traceback; aiohttp closes the connection when it finds it closing.
            pass
        request[BYTES_SENT] = sent
        return resp


def _spans(st: RungState, plan: LivePlan) -> list[tuple[int, int]]:
    """(start, duration) ticks of a rung's completed segments, then the one in progress
    and the next, at the nominal duration (their real cut is within half a frame of it)."""
    spans = [(s.start, s.duration) for s in st.segments]
    t = st.segments[-1].start + st.segments[-1].duration if st.segments else 0
    for number in (st.next_number, st.next_number + 1):
        nominal = round(plan.nominal_segment(number) * st.rate)
        spans.append((t, nominal))
        t += nominal
    return spans


def _live_text(stream: LiveStream) -> LiveText | None:
    """The MPD's view of the stream's WebVTT segments written so far (issue 14)."""
    if stream.captions is None:
        return None
    st = stream.rungs_state[0]
    return LiveText(f"{layout.version_dir(stream.version)}/{layout.SUBTITLES_DIR}", st.rate,
                    tuple((s.start, s.duration) for s in st.segments[:stream.subs_ready]),
                    round(float(stream.plan.segment) * st.rate))


def _segment_done(stream: LiveStream, index: int, number: int, parts_sent: int) -> bool:
    st = stream.rungs_state[index]
    if number < st.next_number:
        seg = st.segments[number - st.segments[0].number]
        return parts_sent >= len(st.seg_parts[number - st.segments[0].number]) and seg.size > 0
    return False


def _has(stream: LiveStream, index: int, msn: int, part: int | None) -> bool:
    return stream.rungs_state[index].has(msn, part)


def _non_negative(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or len(value) > 9:
        raise ValueError(value)
    return int(value)


async def time_now(request: web.Request) -> web.Response:
    """`GET /v1/time`: the origin's clock for DASH UTCTiming (http-iso)."""
    now = time.time()
    t = time.gmtime(now)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(now % 1 * 1000):03d}Z"
    resp = web.Response(text=text, content_type="text/plain",
                        headers={h.CACHE_CONTROL: h.NO_STORE})
    resp.headers[h.ACCESS_CONTROL_ALLOW_ORIGIN] = "*"
    return resp


async def _subtitles_up_to(stream: LiveStream, number: int, wait: float) -> bool:
    """Wait (at most `wait` seconds) until WebVTT segment `number` is written or the stream
    ended; False when the time ran out first."""
    deadline = time.monotonic() + wait
    while stream.subs_ready < number and not stream.ended.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        await stream.wait_change(left)
    return True
