"""Receiving an uploaded source file: the request body streamed to a temporary file.

Two forms (CONTRACT §4 `POST /v1/assets`):

- a raw body, the media itself, with `?id=&title=&kind=&access=` in the query;
- `multipart/form-data` with a `file` part and optional `id`, `title`, `kind`, `access`
  fields
  (the query may carry them too; a form field wins), and an optional `transcript` part
  (WebVTT, SRT or JSON, as `sori package --transcript`), parsed as it arrives so that a
  bad one is refused with 400 before any packaging; one that plainly runs past the media's
  end (by ffprobe's duration) too. The job checks the cues against the packaged audio to
  the millisecond and fails, publishing nothing, if one lies past its end.

The body is never held in memory: it goes to disk in chunks as it arrives, in a
directory of its own under `[origin] upload_dir`, and the byte count is checked
against `[origin] max_upload_bytes` on the way (and up front from Content-Length,
so an honest client over the limit is refused before it sends anything). Any
failure removes the directory; on success the caller owns it (the job removes it
when packaging ends).
"""

from __future__ import annotations

import asyncio
import math
import re
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import unquote

from aiohttp import BodyPartReader, MultipartReader, web

from manifests import layout
from packager import probe
from packager.errors import InvalidInput
from packager.pipeline import default_asset_id
from packager.transcript.cues import MAX_BYTES as TRANSCRIPT_MAX_BYTES
from packager.transcript.cues import Transcript, TranscriptError, format_timestamp
from packager.transcript.parse import parse as parse_transcript

WRITE_BUFFER = 1024 * 1024  # bytes gathered before one write in a worker thread
MULTIPART_SLACK = 64 * 1024  # boundaries and small fields around the file part
FIELD_MAX = 4096  # bytes of a text field (id, title, kind)
# A transcript is refused at upload when a cue ends past the media's end as ffprobe gives it
# by more than this share plus this many seconds (a container's duration is an estimate for
# some formats; the job's check on the packaged audio is exact).
TRANSCRIPT_SLACK = (0.02, 0.5)
FIELDS = ("id", "title", "kind", "access")
_NAME_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_EXT_BY_TYPE = {
    "audio/wav": ".wav", "audio/x-wav": ".wav", "audio/wave": ".wav", "audio/vnd.wave": ".wav",
    "audio/mpeg": ".mp3", "audio/mp3": ".mp3", "audio/mp4": ".m4a", "audio/x-m4a": ".m4a",
    "audio/aac": ".aac", "audio/ogg": ".ogg", "audio/opus": ".opus", "audio/flac": ".flac",
    "audio/x-flac": ".flac", "audio/webm": ".webm", "video/mp4": ".mp4",
    "video/quicktime": ".mov", "video/webm": ".webm", "video/x-matroska": ".mkv",
}


class UploadError(Exception):
    """The upload request is unusable (empty, malformed form, invalid id): 400."""


class UploadTooLarge(UploadError):
    """The body is over `origin.max_upload_bytes`: 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the upload is larger than the limit of {limit} bytes "
                         f"({_human(limit)}, origin.max_upload_bytes)")


@dataclass
class Upload:
    """A received source file and the fields that came with it."""

    directory: Path  # owned by whoever holds the Upload; remove with discard()
    path: Path
    size: int
    asset_id: str
    title: str | None
    kind: str
    filename: str | None  # as the client named it (multipart), if it did
    access: str | None = None  # "public" / "private"; None: keep what the asset had
    transcript: bytes | None = None  # the `transcript` part as sent (the queue carries it)
    parsed: Transcript | None = None  # ... and parsed (in a thread, when it arrived)

    def parsed_transcript(self) -> Transcript | None:
        return self.parsed

    def discard(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def check_id(asset_id: str) -> str:
    if not layout.is_valid_asset_id(asset_id):
        raise UploadError(f"invalid asset id {asset_id!r}: use 1-128 letters, digits, '.', "
                          "'_' or '-', starting with a letter or digit")
    return asset_id


def check_kind(kind: str) -> str:
    if kind not in ("auto", "audio", "video"):
        raise UploadError(f"unknown kind {kind!r}: use auto, audio or video")
    return kind


def check_access(access: str) -> str:
    if access not in ("public", "private"):
        raise UploadError(f"unknown access {access!r}: use public or private")
    return access


def check_fields(fields: dict[str, str]) -> None:
    """Refuse a bad id, kind or access before a byte of the body is read."""
    if "id" in fields and fields["id"] != "":
        check_id(fields["id"])
    if "kind" in fields and fields["kind"] != "":
        check_kind(fields["kind"])
    if "access" in fields and fields["access"] != "":
        check_access(fields["access"])


def query_fields(request: web.BaseRequest) -> dict[str, str]:
    return {k: request.query[k] for k in FIELDS if k in request.query}


async def receive(request: web.BaseRequest, upload_dir: Path, limit: int) -> Upload:
    """Stream the request body to a new directory under `upload_dir`.

    Raises UploadTooLarge, UploadError; nothing is left on disk when it raises.
    """
    fields = query_fields(request)
    check_fields(fields)
    multipart = request.content_type.startswith("multipart/")
    if request.content_type == "application/x-www-form-urlencoded":
        raise UploadError("a url-encoded form cannot carry a file: send the media as the raw "
                          "request body, or as the field 'file' of a multipart/form-data form")
    declared = request.content_length
    if declared is not None and declared > limit + (MULTIPART_SLACK if multipart else 0):
        raise UploadTooLarge(limit)
    if declared == 0:
        raise UploadError("the upload is empty: send the media file as the request body")
    await asyncio.to_thread(upload_dir.mkdir, parents=True, exist_ok=True)
    directory = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="up-", dir=upload_dir))
    try:
        transcript: tuple[bytes, Transcript] | None = None
        if multipart:
            path, size, filename, transcript = await _receive_multipart(request, directory,
                                                                        limit, fields)
        else:
            name = _file_name(None, fields.get("id"), request.content_type)
            path = directory / name
            size = await _copy(request.content.iter_chunked(WRITE_BUFFER), path, limit)
            filename = None
        if size == 0:
            raise UploadError("the upload is empty: the file has no bytes")
        if transcript is not None:
            await _check_transcript_ends(path, transcript[1])
        check_fields(fields)  # form fields may have come after the query check
        asset_id = fields.get("id") or (
            default_asset_id(Path(filename)) if filename else f"asset-{secrets.token_hex(4)}")
        title = fields.get("title") or None
        return Upload(directory, path, size, check_id(asset_id), title,
                      check_kind(fields.get("kind") or "auto"), filename,
                      fields.get("access") or None,
                      *(transcript if transcript is not None else (None, None)))
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, directory, True)
        raise


async def _receive_multipart(request: web.BaseRequest, directory: Path, limit: int,
                             fields: dict[str, str],
                             ) -> tuple[Path, int, str | None, tuple[bytes, Transcript] | None]:
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError) as e:  # aiohttp asserts on a missing boundary
        raise UploadError(f"malformed multipart/form-data body: {e or 'no boundary'}") from None
    path: Path | None = None
    size = 0
    filename: str | None = None
    transcript: tuple[bytes, Transcript] | None = None
    try:
        while True:
            part = await reader.next()
            if part is None:
                break
            if isinstance(part, MultipartReader):
                raise UploadError("nested multipart bodies are not supported")
            if part.name == "file":
                if path is not None:
                    raise UploadError("more than one 'file' part in the form")
                # Browsers escape '"', CR and LF as %22/%0D/%0A (HTML's form encoding),
                # aiohttp's client percent-encodes more: undo both.
                filename = unquote(part.filename) if part.filename else None
                path = directory / _file_name(filename, fields.get("id"),
                                              part.headers.get("Content-Type", ""))
                size = await _copy(_part_chunks(part), path, limit)
            elif part.name == "transcript":
                if transcript is not None:
                    raise UploadError("more than one 'transcript' part in the form")
                transcript = await _read_transcript(part)
            elif part.name in FIELDS:
                value = await part.read(decode=True)
                if len(value) > FIELD_MAX:
                    raise UploadError(f"form field {part.name!r} is too long")
                try:
                    fields[part.name] = value.decode(part.get_charset("utf-8")).strip()
                except (UnicodeDecodeError, LookupError):
                    raise UploadError(f"form field {part.name!r} is not valid text") from None
            else:
                await part.release()  # unknown fields are ignored, not buffered
    except ValueError as e:  # malformed part headers or framing
        raise UploadError(f"malformed multipart/form-data body: {e}") from None
    if path is None:
        raise UploadError("the form has no 'file' part: send the media as the field 'file'")
    return path, size, filename, transcript


async def _read_transcript(part: BodyPartReader) -> tuple[bytes, Transcript]:
    """The `transcript` part (at most the transcript size limit, in memory: it is text),
    refused with a 400 that names the problem when it does not parse."""
    data = bytearray()
    while chunk := await part.read_chunk(64 * 1024):
        data += chunk
        if len(data) > TRANSCRIPT_MAX_BYTES:
            raise UploadError(f"transcript: more than the limit of {TRANSCRIPT_MAX_BYTES} bytes")
    try:
        parsed = await asyncio.to_thread(parse_transcript, bytes(data), part.filename or "")
    except TranscriptError as e:
        raise UploadError(str(e)) from None
    return bytes(data), parsed


async def _check_transcript_ends(path: Path, t: Transcript) -> None:
    """Refuse a transcript whose cues plainly run past the media's end (TRANSCRIPT_SLACK)."""
    try:
        info = await probe.probe(path, max_duration=math.inf)
    except InvalidInput:
        return  # what is wrong with the media is the job's to report
    if info.duration <= 0:
        return
    share, seconds = TRANSCRIPT_SLACK
    limit = info.duration * (1 + share) + seconds
    for n, cue in enumerate(t.cues, start=1):
        if cue.end / 1000 > limit:
            raise UploadError(f"transcript: cue {n} ({format_timestamp(cue.start)} --> "
                              f"{format_timestamp(cue.end)}) ends after the media's end at "
                              f"{info.duration:.3f} s")


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while True:
        chunk = await part.read_chunk(WRITE_BUFFER)
        if not chunk:
            return
        yield chunk


async def _copy(chunks: AsyncIterator[bytes], path: Path, limit: int) -> int:
    """Write the chunks to `path` (in worker threads, a buffer at a time); the count."""
    size = 0
    buffer = bytearray()
    fobj: IO[bytes] = await asyncio.to_thread(path.open, "wb")
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise UploadTooLarge(limit)
            buffer += chunk
            if len(buffer) >= WRITE_BUFFER:
                data, buffer = bytes(buffer), bytearray()
                await asyncio.to_thread(fobj.write, data)
        if buffer:
            await asyncio.to_thread(fobj.write, bytes(buffer))
    finally:
        await asyncio.to_thread(fobj.close)
    return size


def _file_name(filename: str | None, asset_id: str | None, content_type: str) -> str:
    """A safe local name that keeps the client's name (it ends up in the record's
    `source.name`) or, failing that, the id plus an extension from the media type."""
    if filename:
        name = _NAME_SAFE.sub("-", Path(filename.replace("\\", "/")).name).strip("-.")[:120]
        if name:
            return name
    stem = asset_id or "upload"
    return stem + _EXT_BY_TYPE.get(content_type.split(";")[0].strip().lower(), "")


def _human(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB"):
        if value < 1024:
            return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
