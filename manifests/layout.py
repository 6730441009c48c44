"""Where each object of an asset lives, relative to the asset's root (`{id}/` in the store).

The store's keys are the URL paths below `/assets/`, so these names are also URLs.

    {id}/asset.json                      the asset record: the commit point (not served under /assets)
    {id}/master.m3u8                     HLS multivariant playlist      (entry: short max-age)
    {id}/manifest.mpd                    DASH MPD                       (entry: short max-age)
    {id}/v/{version}/...                 everything else; never rewritten (immutable)
    {id}/v/{version}/{rendition}/init.mp4
    {id}/v/{version}/{rendition}/seg_00001.m4s ...
    {id}/v/{version}/{rendition}/seg_00001.0.m4s ...  parts of a live asset (LL-HLS)
    {id}/v/{version}/{rendition}/index.m3u8       media playlist
    {id}/v/{version}/{rendition}/iframes.m3u8     I-frame playlist (video)
    {id}/v/{version}/download.m4a | download.mp4  progressive download
    {id}/v/{version}/poster.jpg, thumbs.jpg, thumbs.vtt   (video)
    {id}/v/{version}/subs/index.m3u8              subtitles media playlist (WebVTT, issue 14)
    {id}/v/{version}/subs/seg_00001.vtt ...       WebVTT segments aligned to the media segments
    {id}/v/{version}/transcript.vtt, transcript.txt   the whole transcript
    {id}/v/{version}/chapters.json, chapters.vtt      chapters (Apple's JSON form; WebVTT)
    {id}/v/{version}/saver/...                    the data-saver rung (Opus in CMAF), a rendition
"""

from __future__ import annotations

import re

ASSET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
VERSION = re.compile(r"[0-9a-z]{1,40}")

RECORD = "asset.json"
MASTER = "master.m3u8"
MPD = "manifest.mpd"
ENTRY_MANIFESTS = (MASTER, MPD)
VERSIONS_DIR = "v"

INIT = "init.mp4"
MEDIA_PLAYLIST = "index.m3u8"
IFRAME_PLAYLIST = "iframes.m3u8"
SEGMENT_TEMPLATE = "seg_$Number%05d$.m4s"  # DASH form of segment_name()
POSTER = "poster.jpg"
THUMBS_SPRITE = "thumbs.jpg"
THUMBS_VTT = "thumbs.vtt"
SUBTITLES_DIR = "subs"  # the subtitles rendition's directory (its playlist is MEDIA_PLAYLIST)
TRANSCRIPT_VTT = "transcript.vtt"
TRANSCRIPT_TXT = "transcript.txt"
CHAPTERS_JSON = "chapters.json"
CHAPTERS_VTT = "chapters.vtt"
DATA_SAVER_RENDITION = "saver"  # rendition id of the Opus data-saver rung
SUBTITLE_SEGMENT_TEMPLATE = "seg_$Number%05d$.vtt"  # DASH form of subtitle_segment_name()


def is_valid_asset_id(asset_id: str) -> bool:
    return ASSET_ID.fullmatch(asset_id) is not None and asset_id not in (".", "..")


def segment_name(number: int) -> str:
    """Media segments are numbered from 1, as DASH's $Number$ with startNumber=1."""
    return f"seg_{number:05d}.m4s"


def subtitle_segment_name(number: int) -> str:
    """WebVTT segment `number` of the subtitles rendition (numbered as the media segments)."""
    return f"seg_{number:05d}.vtt"


def part_name(number: int, index: int) -> str:
    """Part `index` (0-based) of segment `number` of a live rendition (LL-HLS); the
    segment file is the concatenation of its parts."""
    return f"seg_{number:05d}.{index}.m4s"


def version_dir(version: str) -> str:
    return f"{VERSIONS_DIR}/{version}"


def rendition_dir(version: str, rendition_id: str) -> str:
    return f"{VERSIONS_DIR}/{version}/{rendition_id}"


def key(asset_id: str, rel: str) -> str:
    """Store key of an object of the asset, from its path relative to the asset root."""
    return f"{asset_id}/{rel}"


def download_name(kind: str) -> str:
    return "download.mp4" if kind == "video" else "download.m4a"


def is_entry_manifest(rel: str) -> bool:
    return rel in ENTRY_MANIFESTS


def is_immutable(rel: str) -> bool:
    """Objects under v/{version}/ are written once and never change."""
    parts = rel.split("/")
    return len(parts) >= 3 and parts[0] == VERSIONS_DIR and VERSION.fullmatch(parts[1]) is not None
