"""From a bundle request to its plan: the ids checked, the records read, each asset's
files found in the store with their sizes and CRC-32s, and the ZIP laid out.

Used by `GET /v1/offline` (origin.offline.routes, which adds the access checks of
private assets between reading the records and planning) and by `sori bundle`, which
reads the store directly; both give the same bytes for the same request.

Everything a client can get wrong is refused here, before a byte is planned, with a
`Refused` carrying the HTTP status (and `sori bundle`'s exit 2): a malformed, duplicate
or missing list (400), more ids than `[origin] offline_max_assets` (400), an unknown
rendition (400), unknown ids (404, naming all of them), an asset still live or failed
(409).
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

from manifests import layout
from origin.offline import contents
from origin.offline.checksums import Checksums, version_prefix
from origin.offline.contents import Entry, Part
from origin.offline.plan import Plan, Span, plan
from packager.publish import read_record
from packager.record import with_public_url
from storage.base import Store, check_key
from storage.errors import InvalidKey, NotFound

log = logging.getLogger("sori.offline")

READ_CONCURRENCY = 16


class Refused(Exception):
    """A bundle request that cannot be answered, with the status that says why."""

    status = 400


class UnknownAssets(Refused):
    status = 404


class NotReady(Refused):
    status = 409


def parse_ids(values: Iterable[str], limit: int) -> list[str]:
    """The asset ids of `assets=ID,ID,...` (the parameter may also be repeated), in the
    order given."""
    raw = [item for value in values for item in value.split(",")]
    if not raw or raw == [""]:
        raise Refused("name the assets to bundle: ?assets=ID,ID,...")
    bad = [item for item in raw if not layout.is_valid_asset_id(item)]
    if bad:
        shown = ", ".join(repr(b) for b in bad[:5])
        raise Refused(f"invalid asset id {shown}: ids are 1-128 letters, digits, '.', '_' "
                      "or '-', starting with a letter or digit, separated by commas")
    seen: set[str] = set()
    dupes = [i for i in raw if i in seen or seen.add(i)]  # type: ignore[func-returns-value]
    if dupes:
        raise Refused(f"asset named more than once: {', '.join(sorted(set(dupes)))}")
    if len(raw) > limit:
        raise Refused(f"too many assets: {len(raw)} named, at most {limit} per bundle "
                      "([origin] offline_max_assets)")
    return raw


def parse_rendition(value: str | None) -> str | None:
    if value is None:
        return None
    if not layout.is_valid_asset_id(value):
        raise Refused(f"invalid rendition {value!r}")
    return value


async def read_records(store: Store, ids: Sequence[str]) -> list[dict[str, Any]]:
    """The stored records, in the order of `ids`; every unknown id named in one 404."""
    sem = asyncio.Semaphore(READ_CONCURRENCY)

    async def one(asset_id: str) -> dict[str, Any] | None:
        async with sem:
            return await read_record(store, asset_id)

    found = await asyncio.gather(*(one(i) for i in ids))
    missing = [i for i, rec in zip(ids, found, strict=True) if rec is None]
    if missing:
        raise UnknownAssets(f"no asset {', '.join(repr(m) for m in missing)}")
    return [rec for rec in found if rec is not None]


def refuse_unready(records: Sequence[dict[str, Any]]) -> None:
    """409 for an asset still live (its progressive file exists once the stream has
    ended) or one that is not ready."""
    live = [str(r["id"]) for r in records if r.get("state") == "live"]
    if live:
        raise NotReady(f"asset still live: {', '.join(live)} (a bundle can carry it once "
                       "its stream has ended)")
    unready = [str(r["id"]) for r in records if r.get("state", "ready") != "ready"]
    if unready:
        raise NotReady(f"asset not ready: {', '.join(unready)}")


def check_rendition(records: Sequence[dict[str, Any]], rendition: str | None) -> None:
    """Every asset must have `rendition` as an audio rendition (a video rendition's track
    has no sound: the default download carries both)."""
    if rendition is None:
        return
    lacking, video = [], []
    for rec in records:
        kinds = {str(r.get("id")): r.get("type", "audio") for r in rec.get("renditions") or ()
                 if isinstance(r, dict)}
        if rendition not in kinds:
            lacking.append(str(rec["id"]))
        elif kinds[rendition] != "audio":
            video.append(str(rec["id"]))
    if lacking:
        raise Refused(f"unknown rendition {rendition!r} for asset {', '.join(lacking)}")
    if video:
        raise Refused(f"rendition {rendition!r} of {', '.join(video)} is video without "
                      "sound: name an audio rendition, or none for the progressive file")


async def entries(records: Sequence[dict[str, Any]], checksums: Checksums, *,
                  public_url: str = "", rendition: str | None = None) -> list[Entry]:
    """Every asset's files with their figures (read once, then kept by `checksums`)."""
    sem = asyncio.Semaphore(READ_CONCURRENCY)

    async def one(rec: dict[str, Any]) -> Entry:
        async with sem:
            return await _entry(rec, checksums, public_url, rendition)

    return list(await asyncio.gather(*(one(r) for r in records)))


async def _entry(rec: dict[str, Any], checksums: Checksums, public_url: str,
                 rendition: str | None) -> Entry:
    asset_id = str(rec["id"])
    public = with_public_url(rec, public_url)
    data = contents.record_bytes(public)
    parts = [Part("record", contents.FIXED_NAMES["record"], len(data), zlib.crc32(data), data)]
    media_key = _download_key(rec)
    if rendition is None:
        figures = await checksums.of_object(media_key)
    else:
        prefix = version_prefix(media_key)
        assert prefix is not None  # _download_key checked it
        figures = await checksums.of_track(prefix, rendition)
    parts.append(Part("media", contents.part_name("media", asset_id, media_key, rendition),
                      figures.size, figures.crc32, _spans(figures.objects)))
    for role, field in contents.URL_FIELDS.items():
        key = _key_of_url(asset_id, rec.get(field))
        if key is None:
            continue
        try:
            figures = await checksums.of_object(key)
        except NotFound:
            log.warning("asset %s: its record names %s, which is not in the store", asset_id, key)
            continue
        parts.append(Part(role, contents.part_name(role, asset_id, key, None), figures.size,
                          figures.crc32, _spans(figures.objects)))
    return Entry(public, tuple(parts))


def _spans(objects: Iterable[tuple[str, int]]) -> tuple[Span, ...]:
    return tuple(Span(key, 0, size) for key, size in objects)


def _download_key(rec: dict[str, Any]) -> str:
    asset_id = str(rec["id"])
    rel = rec.get("download_key")
    if not isinstance(rel, str) or not layout.is_immutable(rel):
        raise NotReady(f"asset {asset_id!r} has no progressive file")
    try:
        return check_key(layout.key(asset_id, rel))
    except InvalidKey:
        raise NotReady(f"asset {asset_id!r} has no progressive file") from None


def _key_of_url(asset_id: str, url: object) -> str | None:
    """The store key behind a record's media URL (`/assets/{id}/v/...`), when it is an
    immutable object of this asset; None for anything else (absent, foreign, odd)."""
    if not isinstance(url, str):
        return None
    marker = f"/assets/{asset_id}/"
    at = url.find(marker)
    if at < 0:
        return None
    rel = url[at + len(marker):].split("?", 1)[0].split("#", 1)[0]
    try:
        check_key(rel)
    except InvalidKey:
        return None
    return layout.key(asset_id, rel) if layout.is_immutable(rel) else None


def layout_bundle(found: Sequence[Entry], rendition: str | None) -> Plan:
    return plan(contents.members(found, rendition, zlib.crc32))


async def plan_for(store: Store, ids: Sequence[str], checksums: Checksums, *,
                   public_url: str = "", rendition: str | None = None) -> Plan:
    """The whole path without access checks (for `sori bundle`, which holds the store)."""
    records = await read_records(store, ids)
    refuse_unready(records)
    check_rendition(records, rendition)
    found = await entries(records, checksums, public_url=public_url,
                          rendition=rendition)
    return layout_bundle(found, rendition)
