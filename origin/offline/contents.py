"""What an offline bundle holds and under which names, and its two index files. Pure.

    index.json              the bundle's index: every asset and its files (machine-readable)
    index.html              the same for a person: titles, players, file list (works from disk)
    {id}/asset.json         the record, as GET /v1/assets/{id} gives it
    {id}/{id}.m4a | .mp4    the progressive file (or {id}.{rendition}.m4a with ?rendition=)
    {id}/poster.jpg         when the asset has one
    {id}/transcript.vtt, transcript.txt, chapters.json   when the asset has them

Assets come in the order they were asked for and each asset's files in the order of
ROLES, so the same request gives the same bytes. Times are the assets' own (their
`created` instant), never the moment of the request.
"""

from __future__ import annotations

import html
import json
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from origin.offline.plan import Member, Span, dos_datetime

FORMAT = "sori-offline/1"
# The files of an asset, in bundle order; the record fields (URLs) they come from.
ROLES = ("record", "media", "poster", "transcript", "transcript_text", "chapters")
URL_FIELDS = {"poster": "poster", "transcript": "transcript",
              "transcript_text": "transcript_text", "chapters": "chapters"}
FIXED_NAMES = {"record": "asset.json", "transcript": "transcript.vtt",
               "transcript_text": "transcript.txt", "chapters": "chapters.json"}


@dataclass(frozen=True, slots=True)
class Part:
    """One file of an asset, before it is laid out: its role (ROLES), its name inside the
    asset's folder, size, CRC-32 and bytes."""

    role: str
    name: str
    size: int
    crc32: int
    content: bytes | tuple[Span, ...]


@dataclass(frozen=True, slots=True)
class Entry:
    """An asset of the bundle: its record as clients see it, and its files."""

    record: dict[str, Any]
    parts: tuple[Part, ...]

    @property
    def asset_id(self) -> str:
        return str(self.record["id"])


def record_bytes(record: dict[str, Any]) -> bytes:
    """The record as a file: indented for a reader, key order as stored (stable)."""
    return (json.dumps(record, ensure_ascii=False, indent=2) + "\n").encode()


def part_name(role: str, asset_id: str, source_key: str, rendition: str | None) -> str:
    """The file name of a part inside `{id}/`."""
    ext = posixpath.splitext(source_key)[1].lower()
    if role == "media":
        # A rendition's track is always audio (sources.check_rendition): .m4a.
        return f"{asset_id}.{rendition}.m4a" if rendition else f"{asset_id}{ext}"
    if role == "poster":
        return f"poster{ext or '.jpg'}"
    return FIXED_NAMES[role]


def members(entries: Sequence[Entry], rendition: str | None,
            crc32: Any) -> list[Member]:
    """Every member of the bundle, index files first. `crc32` is zlib.crc32 (passed in,
    so this module stays free of anything but layout)."""
    out: list[Member] = []
    for e in entries:
        dos = dos_datetime(e.record.get("created"))
        order = {role: i for i, role in enumerate(ROLES)}
        for p in sorted(e.parts, key=lambda p: order[p.role]):
            out.append(Member(f"{e.asset_id}/{p.name}", p.size, p.crc32, dos, p.content))
    newest = max((str(e.record.get("created") or "") for e in entries), default="")
    dos = dos_datetime(newest or None)
    index = index_json(entries, rendition)
    page = index_html(entries)
    head = [Member("index.json", len(index), crc32(index), dos, index),
            Member("index.html", len(page), crc32(page), dos, page)]
    return head + out


def index_json(entries: Sequence[Entry], rendition: str | None) -> bytes:
    assets = []
    for e in entries:
        rec = e.record
        assets.append({
            "id": e.asset_id,
            "title": rec.get("title"),
            "kind": rec.get("kind"),
            "duration": rec.get("duration"),
            "created": rec.get("created"),
            "version": rec.get("version"),
            "files": {p.role: {"name": f"{e.asset_id}/{p.name}", "size": p.size,
                               "crc32": f"{p.crc32:08x}"}
                      for p in e.parts},
        })
    doc = {"format": FORMAT, "rendition": rendition, "assets": assets}
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode()


def index_html(entries: Sequence[Entry]) -> bytes:
    """A page that plays every asset of the bundle from disk (relative links only)."""
    esc = html.escape
    rows = []
    for e in entries:
        files = {p.role: f"{e.asset_id}/{p.name}" for p in e.parts}
        title = str(e.record.get("title") or e.asset_id)
        media = files.get("media", "")
        track = (f'<track kind="subtitles" label="Transcript" src="{esc(files["transcript"])}" '
                 'default>' if "transcript" in files else "")
        if e.record.get("kind") == "video":
            poster = f' poster="{esc(files["poster"])}"' if "poster" in files else ""
            player = f'<video controls preload="none"{poster} src="{esc(media)}">{track}</video>'
        else:
            player = f'<audio controls preload="none" src="{esc(media)}">{track}</audio>'
        links = " · ".join(f'<a href="{esc(path)}">{esc(posixpath.basename(path))}</a>'
                           for path in files.values())
        duration = e.record.get("duration")
        length = f" ({_clock(float(duration))})" if isinstance(duration, int | float) else ""
        rows.append(f"<section><h2>{esc(title)}{esc(length)}</h2>\n{player}\n"
                    f"<p>{links}</p></section>")
    body = "\n".join(rows)
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>Offline bundle</title>\n<style>body{font-family:sans-serif;max-width:48em;"
            "margin:2em auto}audio,video{width:100%}</style></head><body>\n"
            f"<h1>Offline bundle</h1>\n{body}\n</body></html>\n").encode()


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"
