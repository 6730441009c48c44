"""The video plan's pure parts: ladder sizes, frame rate, keyframe grid, thumbnails."""

from __future__ import annotations

from fractions import Fraction

import pytest

from packager import timeline
from packager.probe import StreamInfo
from packager.video.ladder import (
    display_size,
    gop_frames,
    keyframe_expr,
    output_frame_rate,
    plan_ladder,
)
from packager.video.thumbs import plan_sprites, poster_size, sheet_name, vtt
from sori.config import PackagerConfig

LADDER = PackagerConfig().video_ladder


def sizes(w: int, h: int) -> list[tuple[int, int]]:
    return [(o.width, o.height) for o in plan_ladder(LADDER, w, h)]


def test_ladder_never_upscales_and_keeps_the_aspect_ratio() -> None:
    assert sizes(1920, 1080) == [(1920, 1080), (1280, 720), (854, 480), (640, 360), (426, 240)]
    assert sizes(1280, 720) == [(1280, 720), (854, 480), (640, 360), (426, 240)]
    assert sizes(643, 361) == [(642, 360), (428, 240)]
    # portrait: a rung's height is the short side
    assert sizes(1080, 1920) == [(1080, 1920), (720, 1280), (480, 854), (360, 640), (240, 426)]
    # smaller than the lowest rung: one rung at the source's own (even) size
    [tiny] = plan_ladder(LADDER, 201, 113)
    assert (tiny.width, tiny.height, tiny.id) == (200, 112, "112p")
    assert tiny.bitrate < LADDER[-1].bitrate


def test_every_dimension_is_even() -> None:
    for w, h in [(1919, 1079), (721, 1281), (3840, 1607), (350, 350)]:
        for ow, oh in sizes(w, h):
            assert ow % 2 == 0 and oh % 2 == 0


def test_vbv_settings() -> None:
    top = plan_ladder(LADDER, 1920, 1080)[0]
    assert top.maxrate == int(top.bitrate * 1.5) and top.bufsize == 2 * top.maxrate
    assert plan_ladder(LADDER, 1920, 1080)[-1].profile == "baseline"


def test_display_size_honours_rotation() -> None:
    assert display_size(StreamInfo(0, "h264", 1, width=1920, height=1080, rotation=90)) == (
        1080, 1920)
    assert display_size(StreamInfo(0, "h264", 1, width=1920, height=1080, rotation=180)) == (
        1920, 1080)


@pytest.mark.parametrize(("measured", "expected"), [
    (30.0, Fraction(30)), (29.97, Fraction(30000, 1001)), (23.98, Fraction(24000, 1001)),
    (25.1, Fraction(25)), (120.0, Fraction(60)), (0.0, Fraction(25)), (17.4, Fraction(17)),
])
def test_output_frame_rate(measured: float, expected: Fraction) -> None:
    assert output_frame_rate(measured) == expected


def _forced_frames(expr: str, fps: Fraction, frames: int) -> list[int]:
    """Evaluate the -force_key_frames expression as ffmpeg does, frame by frame."""
    body = expr.removeprefix("expr:").replace("if(", "iff(")
    env = {"iff": lambda c, a, b: a if c else b, "lte": lambda a, b: a <= b,
           "gte": lambda a, b: a >= b, "eq": lambda a, b: a == b}
    forced: list[int] = []
    for n in range(frames):
        t = float(n * (1 / fps))
        if eval(body, {}, {**env, "n_forced": len(forced), "t": t}):  # noqa: S307
            forced.append(n)
    return forced


@pytest.mark.parametrize("fps", [Fraction(30), Fraction(30000, 1001), Fraction(25)])
@pytest.mark.parametrize("duration", [7.0, 8.2, 1.5, 60.0])
def test_keyframes_land_on_the_shared_grid(fps: Fraction, duration: float) -> None:
    seg = Fraction(2)
    cuts = timeline.segment_boundaries(Fraction(duration), seg)
    forced = _forced_frames(keyframe_expr(cuts, seg, fps), fps, int(duration * fps))
    # frame 0, then the first frame at or after each cut, and nothing else
    expected = [0] + [int(-(-c * fps // 1)) for c in cuts]
    assert forced == expected
    # x264's own GOP limit never comes before the next forced IDR
    assert all(b - a < gop_frames(2.0, fps) for a, b in zip(forced, forced[1:], strict=False))


def test_sprites_and_vtt() -> None:
    plan = plan_sprites(1000.0, 5.0, 160, 1920, 1080)
    assert (plan.width, plan.height, plan.columns, plan.rows) == (160, 90, 10, 10)
    assert plan.count == 200 and plan.sheets == 2
    text = vtt(plan, 1000.0)
    assert text.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:05.000\nthumbs.jpg#xywh=0,0,160,90\n")
    assert "00:08:20.000 --> 00:08:25.000\nthumbs-2.jpg#xywh=0,0,160,90" in text
    assert text.rstrip().endswith("thumbs-2.jpg#xywh=1440,810,160,90")
    assert sheet_name(0) == "thumbs.jpg"
    short = plan_sprites(7.0, 5.0, 160, 640, 360)
    assert (short.columns, short.rows, short.count) == (2, 1, 2)
    assert vtt(short, 7.0).rstrip().endswith("00:00:05.000 --> 00:00:07.000\n"
                                             "thumbs.jpg#xywh=160,0,160,90")
    assert poster_size((1920, 1080)) == (1280, 720) and poster_size((640, 360)) == (640, 360)
