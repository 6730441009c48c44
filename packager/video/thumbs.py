"""The poster and the scrubbing thumbnails: sprite-sheet layout and the WebVTT track (pure).

Thumbnails are `thumbnail_width` wide, one every `thumbnail_interval` seconds, tiled
row by row into sheets of at most MAX_COLUMNS x MAX_ROWS; a long video gets several
sheets (`thumbs.jpg`, `thumbs-2.jpg`, ...), each a JPEG a browser decodes happily. The
track (`thumbs.vtt`) has one cue per thumbnail pointing at its tile with a media
fragment, `thumbs.jpg#xywh=x,y,w,h`, as players' thumbnail plug-ins expect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from manifests import layout
from packager.video.ladder import even

MAX_COLUMNS = 10
MAX_ROWS = 10
POSTER_MAX_WIDTH = 1280
POSTER_POSITION = 0.10  # share of the duration


@dataclass(frozen=True)
class SpritePlan:
    count: int  # thumbnails
    interval: float
    width: int
    height: int
    columns: int
    rows: int

    @property
    def per_sheet(self) -> int:
        return self.columns * self.rows

    @property
    def sheets(self) -> int:
        return math.ceil(self.count / self.per_sheet)


def sheet_name(index: int) -> str:
    """Name of the sheet `index` (0-based) in the version directory."""
    if index == 0:
        return layout.THUMBS_SPRITE
    stem, _, ext = layout.THUMBS_SPRITE.rpartition(".")
    return f"{stem}-{index + 1}.{ext}"


def plan_sprites(duration: float, interval: float, thumb_width: int, width: int,
                 height: int) -> SpritePlan:
    """How many thumbnails and how they tile, for a picture of `width`x`height`."""
    count = max(1, math.ceil(duration / interval - 1e-6))
    tw = even(min(thumb_width, width))
    th = even(tw * height / width)
    columns = min(MAX_COLUMNS, count)
    rows = min(MAX_ROWS, math.ceil(count / columns))
    return SpritePlan(count, interval, tw, th, columns, rows)


def poster_size(largest: tuple[int, int]) -> tuple[int, int]:
    """The largest rung's size, at most POSTER_MAX_WIDTH wide."""
    w, h = largest
    if w <= POSTER_MAX_WIDTH:
        return w, h
    return POSTER_MAX_WIDTH, even(POSTER_MAX_WIDTH * h / w)


def poster_frame(duration: float, fps: float) -> int:
    """A representative frame: about 10% in (past a title card or a fade-in)."""
    return max(0, int(duration * POSTER_POSITION * fps))


def _timestamp(seconds: float) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def vtt(plan: SpritePlan, duration: float) -> str:
    """The WebVTT thumbnail track; sheet URIs are relative to it (same directory)."""
    lines = ["WEBVTT", ""]
    for i in range(plan.count):
        start = i * plan.interval
        if start >= duration and i > 0:
            break
        end = min(duration, start + plan.interval)
        sheet, tile = divmod(i, plan.per_sheet)
        row, col = divmod(tile, plan.columns)
        lines += [f"{_timestamp(start)} --> {_timestamp(end)}",
                  f"{sheet_name(sheet)}#xywh={col * plan.width},{row * plan.height},"
                  f"{plan.width},{plan.height}", ""]
    return "\n".join(lines)
