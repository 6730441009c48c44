"""Live ingest: how a TTS producer pushes audio (CONTRACT §4).

    POST /v1/live                     create: {"id"?, "title"?, "access"?, "format"?,
                                      "transcript"?} → 201 ASSET
    POST /v1/live/{id}/chunks?seq=N   append; a repeated seq is acknowledged and ignored,
                                      a gap is 409 {"expected": K}
    POST /v1/live/{id}/end            seal → ASSET (state "ready")
    PUT  /v1/live/{id}/stream         one long chunked request; its end ends the stream
    GET  /v1/live/{id}/ws             WebSocket: binary frames are audio, {"end": true} ends
    GET  /v1/live/{id}/events         Server-Sent Events: started, progress, ended
    GET  /v1/time                     the origin's clock (DASH UTCTiming)

Text with the audio (issue 14; a stream created with `"transcript": true`, whose HLS gets a
live WebVTT rendition and whose DASH a text AdaptationSet, and which seals with
transcript.vtt/.txt and chapters like a packaged asset):

    X-Sori-Text: <percent-encoded UTF-8>  on a chunk: what this chunk's audio says; the cue
                                      spans exactly its audio (PCM, WAV; a compressed stream:
                                      the decoder's output until the next chunk)
    X-Sori-Cues: <JSON>               on a chunk: cues timed in seconds of the stream's
                                      audio (silence the origin inserts not counted):
                                      {"text","start","end","chapter"?} or a list of them,
                                      ASCII JSON or percent-encoded; repeatable (one per cue
                                      keeps each under the 8 KB header limit)
    WebSocket text frame, plain text  what the next binary frame's audio says
    WebSocket text frame, JSON object {"text"} the same; {"text","start","end","chapter"?}
                                      (or {"cues": [...]}) timed as X-Sori-Cues; {"end": true}
                                      ends the stream

(`PUT /v1/live/{id}/stream` carries audio only.) A cue's media time is where its audio went
into the stream, so it stays on its words
across the silence the origin inserts while the producer lags (packager.live.captions).
Bad text (not UTF-8, an overlap with the cue before, text on a stream without a
transcript) is a 400 (a WebSocket {"error"} message) and the chunk is not taken.

Write methods need the API key like uploads (the edge middleware checks it). A producer
that disconnects leaves its stream open: it may come back (chunks are idempotent by
seq); past `[live] producer_timeout` without audio the stream is sealed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from typing import Any

from aiohttp import WSMsgType, web

from manifests import layout
from origin import auth
from origin.app import MEDIA_KEY
from origin.auth import holds_write_key
from origin.errors import json_error, register_error
from origin.http import headers as h
from origin.http import sse
from origin.keys import BYTES_SENT, CONFIG_KEY, LIVE_KEY, STORE_KEY, STREAMING
from origin.media import is_private_record
from packager.errors import InvalidInput
from packager.live import formats
from packager.live.captions import header_cues, header_text, timed_cues
from packager.live.registry import AssetExists
from packager.live.stream import LiveStream, SeqGap, StreamClosed
from packager.publish import read_record
from packager.record import with_public_url
from packager.transcript.cues import Transcript
from storage.errors import InvalidKey, NotFound

log = logging.getLogger("sori.live")

PROGRESS_EVERY = 0.5  # seconds between progress events
TEXT_HEADER = "X-Sori-Text"  # a chunk's text (issue 14)
CUES_HEADER = "X-Sori-Cues"  # cues timed on the stream's audio
TITLE_MAX = 500

register_error(AssetExists, 409)
register_error(StreamClosed, 409)


def json_response(data: Any, status: int = 200) -> web.Response:
    resp = web.json_response(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))
    resp.headers[h.CACHE_CONTROL] = h.NO_STORE
    return resp


def _public(request: web.Request, rec: dict[str, Any]) -> dict[str, Any]:
    return with_public_url(rec, request.app[CONFIG_KEY].origin.public_url)


async def _stream(request: web.Request) -> LiveStream:
    """The live stream named in the path; 409 for an asset that is not (or no longer)
    live, 404 for none."""
    asset_id = request.match_info["id"]
    if not layout.is_valid_asset_id(asset_id):
        raise InvalidKey(f"invalid asset id {asset_id!r}")
    registry = request.app[LIVE_KEY]
    stream: LiveStream | None = registry.get(asset_id)
    if stream is None:
        rec = await read_record(registry.store, asset_id)
        if rec is None:
            raise NotFound(f"no live stream {asset_id!r}")
        raise StreamClosed(f"asset {asset_id!r} is not live (state {rec.get('state')!r})")
    return stream


async def create(request: web.Request) -> web.Response:
    try:
        body = await request.json() if request.can_read_body else {}
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    unknown = set(body) - {"id", "title", "access", "format", "transcript"}
    if unknown:
        raise InvalidInput(f"unknown field {sorted(unknown)[0]!r}")
    asset_id = body.get("id") or f"live-{secrets.token_hex(4)}"
    if not isinstance(asset_id, str) or not layout.is_valid_asset_id(asset_id):
        raise InvalidInput(f"invalid asset id {asset_id!r}: use 1-128 letters, digits, '.', "
                           "'_' or '-', starting with a letter or digit")
    title = body.get("title")
    if title is not None and (not isinstance(title, str) or len(title) > TITLE_MAX):
        raise InvalidInput(f"title: expected a string of at most {TITLE_MAX} characters")
    access = body.get("access", "public")
    if access not in ("public", "private"):
        raise InvalidInput("access: must be \"public\" or \"private\"")
    fmt = formats.parse_format(body.get("format"))
    transcript = body.get("transcript", False)
    if not isinstance(transcript, bool):
        raise InvalidInput("transcript: must be true or false")
    from origin.api import JOBS_KEY  # the jobs of uploads: an id being packaged is taken

    if request.app[JOBS_KEY].active_for(asset_id) is not None:
        raise AssetExists(f"asset {asset_id!r} is being packaged")
    registry = request.app[LIVE_KEY]
    await registry.create(asset_id, title=title, fmt=fmt, access=access, transcript=transcript)
    resp = json_response(_public(request, registry.record_of(registry.streams[asset_id])), 201)
    resp.headers["Location"] = f"/v1/assets/{asset_id}"
    return resp


async def chunk(request: web.Request) -> web.Response:
    stream = await _stream(request)
    raw = request.query.get("seq")
    if raw is None or not raw.isdigit() or len(raw) > 12:
        raise InvalidInput("seq: a non-negative integer is required (?seq=N, from 0)")
    seq = int(raw)
    text, cues = _chunk_text(request)
    limit = stream.cfg.max_chunk_bytes
    if request.content_length is not None and request.content_length > limit:
        return json_error(413, f"chunk over live.max_chunk_bytes ({limit} bytes)")
    # The whole body, to its end: content.read(n) returns what has arrived so far, which
    # took a chunk cut short by a disconnect (or split across reads) as if it were whole.
    body = bytearray()
    try:
        async for piece in request.content.iter_any():
            body += piece
            if len(body) > limit:
                return json_error(413, f"chunk over live.max_chunk_bytes ({limit} bytes)")
    except ConnectionError:
        # The producer went away mid-chunk: nothing of it is taken; it resends the seq.
        raise InvalidInput(f"chunk {seq}: the connection was lost before its end") from None
    data = bytes(body)
    try:
        taken = await request.app[LIVE_KEY].append(stream, seq, data, text=text, cues=cues)
    except SeqGap as gap:
        resp = json_response({"error": str(gap), "expected": gap.expected}, 409)
        return resp
    return json_response({"seq": seq, "duplicate": not taken, "expected": stream.expected_seq,
                          "media_seconds": round(stream.media_seconds, 3)})


def _chunk_text(request: web.Request) -> tuple[str | None, Transcript | None]:
    """The text a chunk carries (X-Sori-Text, X-Sori-Cues), read before its body."""
    raw_text = request.headers.get(TEXT_HEADER)
    raw_cues = request.headers.getall(CUES_HEADER, [])
    text = header_text(raw_text, TEXT_HEADER) if raw_text is not None else None
    cues = header_cues(raw_cues, CUES_HEADER) if raw_cues else None
    return text, cues


def _frame_text(data: str) -> tuple[str | None, Transcript | None, bool]:
    """A WebSocket text frame: (text for the next audio frame, timed cues, end?)."""
    try:
        command = json.loads(data)
    except ValueError:
        command = None
    if not isinstance(command, dict):
        return data, None, False  # plain text: what the next binary frame says
    if command.get("end") is True and set(command) == {"end"}:
        return None, None, True
    if set(command) == {"text"}:
        value = command["text"]
        if not isinstance(value, str):
            raise InvalidInput("text: must be a string")
        return value, None, False
    if "text" in command or "cues" in command:
        return None, timed_cues(data), False
    raise InvalidInput('text frames are caption text, {"text", "start"?, "end"?} or '
                       '{"end": true}')


async def end(request: web.Request) -> web.Response:
    registry = request.app[LIVE_KEY]
    try:
        stream = await _stream(request)
    except StreamClosed:
        # Ending twice is fine (a producer retrying its end): the sealed record.
        rec = await read_record(registry.store, request.match_info["id"])
        if rec is not None and rec.get("state") == "ready":
            return json_response(_public(request, rec))
        raise
    if stream.state == "ready":
        return json_response(_public(request, registry.records[stream.asset_id]))
    sealed = await asyncio.shield(registry.end(stream))
    return json_response(_public(request, sealed))


async def put_stream(request: web.Request) -> web.Response:
    """One long request: its body is the stream, its end ends the stream."""
    stream = await _stream(request)
    registry = request.app[LIVE_KEY]
    limit = stream.cfg.max_chunk_bytes
    async for data in request.content.iter_chunked(min(limit, 256 * 1024)):
        await registry.append(stream, None, data)
    rec = await asyncio.shield(registry.end(stream))
    return json_response(_public(request, rec))


async def websocket(request: web.Request) -> web.StreamResponse:
    """The upgrade is a GET, but what follows writes: it needs the API key as well."""
    refused = auth.check(request, request.app[CONFIG_KEY].security.api_keys, write=True)
    if refused is not None:
        return refused
    stream = await _stream(request)
    registry = request.app[LIVE_KEY]
    ws = web.WebSocketResponse(max_msg_size=stream.cfg.max_chunk_bytes, heartbeat=20.0)
    await ws.prepare(request)
    request[STREAMING] = True
    received = 0
    next_text: str | None = None  # a plain text frame's text, for the next binary frame
    try:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                text, next_text = next_text, None
                try:
                    await registry.append(stream, None, msg.data, text=text)
                except InvalidInput as e:
                    await ws.send_json({"error": str(e)})
                    await ws.close(code=1003 if not isinstance(e, StreamClosed) else 1000)
                    break
                received += len(msg.data)
            elif msg.type == WSMsgType.TEXT:
                try:
                    text, cues, ending = _frame_text(msg.data)
                    if text is not None:
                        if stream.captions is None:
                            raise InvalidInput("this stream has no transcript: create it with "
                                               "\"transcript\": true to send text")
                        next_text = text
                    elif cues is not None:
                        await registry.append(stream, None, b"", cues=cues)
                except InvalidInput as e:
                    await ws.send_json({"error": str(e)})
                    continue
                if ending:
                    try:
                        rec = await asyncio.shield(registry.end(stream))
                    except InvalidInput as e:
                        await ws.send_json({"error": str(e)})
                    else:
                        await ws.send_json({"asset": _public(request, rec)})
                    await ws.close()
                    break
            elif msg.type == WSMsgType.ERROR:
                break
    finally:
        request[BYTES_SENT] = 0
    log.info("live %s: websocket closed after %d bytes", stream.asset_id, received)
    return ws


async def _refuse_private(request: web.Request, asset_id: str,
                          rec: dict[str, Any] | None) -> web.Response | None:
    """A private stream's events need a write key or its signed URL's `?token=`."""
    rec = rec if rec is not None else await read_record(request.app[STORE_KEY], asset_id)
    if rec is None or not is_private_record(rec) or holds_write_key(request):
        return None
    admitted = request.app[MEDIA_KEY].guard.admit(request, asset_id, request.query.get("token"))
    return admitted if isinstance(admitted, web.Response) else None


async def events(request: web.Request) -> web.StreamResponse:
    asset_id = request.match_info["id"]
    if not layout.is_valid_asset_id(asset_id):
        raise InvalidKey(f"invalid asset id {asset_id!r}")
    registry = request.app[LIVE_KEY]
    stream = registry.get(asset_id)
    refused = await _refuse_private(request, asset_id, registry.records.get(asset_id))
    if refused is not None:
        return refused
    resp = web.StreamResponse(headers={
        h.CONTENT_TYPE: sse.CONTENT_TYPE, h.CACHE_CONTROL: "no-cache",
        "X-Accel-Buffering": "no"})
    if stream is None:
        rec = await read_record(registry.store, asset_id)
        if rec is None:
            raise NotFound(f"no asset {asset_id!r}")
        await resp.prepare(request)
        request[STREAMING] = True
        status = {"id": asset_id, "state": rec.get("state"), "producer": "ended",
                  "media_seconds": rec.get("duration"),
                  "silence_seconds": rec.get("silence_inserted", 0.0),
                  "started": (rec.get("live") or {}).get("started")}
        await resp.write(sse.format_event("ended", json.dumps(status)))
        await resp.write_eof()
        return resp
    await resp.prepare(request)
    request[STREAMING] = True
    sent_started = False
    n = 0
    try:
        await resp.write(f"retry: {sse.RETRY_MS}\n\n".encode())
        while True:
            status = stream.status()
            if stream.start is not None and not sent_started:
                sent_started = True
                n += 1
                await resp.write(sse.format_event("started", json.dumps(status), n))
            if stream.ended.is_set():
                rec = registry.records.get(asset_id, {})
                status.update(state=stream.state, producer="ended",
                              media_seconds=rec.get("duration", status["media_seconds"]))
                n += 1
                await resp.write(sse.format_event("ended", json.dumps(status), n))
                break
            n += 1
            await resp.write(sse.format_event("progress", json.dumps(status), n))
            await asyncio.sleep(PROGRESS_EVERY)
            if not stream.ended.is_set():
                await stream.wait_change(sse.HEARTBEAT)
        await resp.write_eof()
    except ConnectionResetError:
        pass
    return resp
