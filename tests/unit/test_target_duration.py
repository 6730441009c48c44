"""One EXT-X-TARGETDURATION per presentation (RFC 8216 §6.2.4): "Each Media Playlist in each
Variant Stream MUST have the same Target Duration"; I-frame playlists are exempt.

The renditions are synthetic but shaped like the real ones: AAC segments are whole 1024-sample
frames, so a 4 s segment is 86 or 87 frames at 22.05 kHz (3.994 s / 4.040 s), 172 or 173 at
44.1 kHz (3.994 s / 4.017 s), 187 or 188 at 48 kHz (3.989 s / 4.011 s): one rung may stay under
4 s while its neighbours run a frame past it.
"""

from __future__ import annotations

import math

import m3u8
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manifests import hls
from manifests.model import Presentation, Rendition, Segment
from packager.publish import Bundle

FRAME = 1024


def audio(rid: str, rate: int, frames: list[int]) -> Rendition:
    segs, t = [], 0
    for i, n in enumerate(frames):
        segs.append(Segment(number=i + 1, start=t, duration=n * FRAME, size=1000 * n))
        t += n * FRAME
    return Rendition(id=rid, content_type="audio", codecs="mp4a.40.2", timescale=rate,
                     segments=tuple(segs), dir=f"v/abc123/{rid}", init_size=700,
                     sample_rate=rate, channels=2)


def video(rid: str, seconds: list[float], w: int = 640, h: int = 360) -> Rendition:
    segs, t = [], 0
    for i, s in enumerate(seconds):
        d = round(s * 90000)
        segs.append(Segment(number=i + 1, start=t, duration=d, size=100_000,
                            iframe_offset=60, iframe_length=20_000))
        t += d
    return Rendition(id=rid, content_type="video", codecs="avc1.64001F", timescale=90000,
                     segments=tuple(segs), dir=f"v/abc123/{rid}", init_size=900, width=w,
                     height=h, frame_rate=25.0)


# The default audio ladder on 15 s of speech cut at 4 s: the 22.05 kHz rung's segments all
# stay under 4 s, the 44.1 and 48 kHz rungs have one a frame longer than 4 s.
LADDER = Presentation("speech", "audio", 4.0, (
    audio("low", 22050, [86, 86, 86, 65]),
    audio("medium", 44100, [172, 173, 172, 129]),
    audio("high", 48000, [187, 188, 188, 141]),
))

# Video cut at exactly 4 s (100 frames at 25 fps) with a 48 kHz AAC group a frame longer.
CLIP = Presentation("clip", "video", 4.0, (
    video("360p", [4.0, 4.0, 4.0, 2.0]),
    video("240p", [4.0, 4.0, 4.0, 2.0], 426, 240),
    audio("audio", 48000, [188, 187, 188, 94]),
))


def longest(p: Presentation) -> float:
    return max(r.seconds(s.duration) for r in (*p.audio, *p.video) for s in r.segments)


def media_playlists(p: Presentation) -> dict[str, m3u8.M3U8]:
    """What the packager publishes for `p`, parsed, by URI (media playlists only)."""
    bundle = Bundle()
    bundle.add_manifests(p)
    uris = {r.playlist_uri for r in p.renditions}
    assert uris <= set(bundle.playlists)
    return {uri: m3u8.loads(bundle.playlists[uri]) for uri in uris}


def assert_one_target(p: Presentation) -> int:
    target = hls.presentation_target(p)
    assert target == max(1, math.ceil(longest(p) - 1e-6))
    playlists = media_playlists(p)
    assert {pl.target_duration for pl in playlists.values()} == {target}
    for uri, pl in playlists.items():
        text = pl.dumps()
        assert text.count("#EXT-X-TARGETDURATION:") == 1, uri
        assert all(s.duration <= target for s in pl.segments), uri
        assert all(round(s.duration) <= target for s in pl.segments), uri
    return target


def test_own_targets_disagree_on_the_ladder() -> None:
    # what each rung would say alone: the reason for a shared target
    own = {r.id: m3u8.loads(hls.media_playlist(r)).target_duration for r in LADDER.renditions}
    assert own == {"low": 4, "medium": 5, "high": 5}


def test_audio_ladder_shares_one_target() -> None:
    assert assert_one_target(LADDER) == 5


def test_video_and_audio_group_share_one_target() -> None:
    own = {r.id: m3u8.loads(hls.media_playlist(r)).target_duration for r in CLIP.renditions}
    assert own == {"360p": 4, "240p": 4, "audio": 5}
    assert assert_one_target(CLIP) == 5


def test_iframe_playlists_keep_their_own_target() -> None:
    bundle = Bundle()
    bundle.add_manifests(CLIP)
    for r in CLIP.video:
        pl = m3u8.loads(bundle.playlists[r.iframe_playlist_uri])
        assert pl.is_i_frames_only
        assert pl.target_duration == 4  # its own segments; exempt from §6.2.4


def test_exact_whole_seconds_do_not_round_up() -> None:
    # 4 s exactly, and anything within the 1 µs tolerance over it, is a target of 4
    p = Presentation("v", "video", 4.0, (
        video("360p", [4.0, 4.0, 3.0]),
        audio("audio", 48000, [187, 187, 140]),  # 3.989 s
    ))
    assert assert_one_target(p) == 4
    within = Presentation("n", "audio", 4.0, (audio("a", 1024 * 10_000_000, [40_000_005]),))
    assert hls.segment_seconds(within.audio[0]) == [4.0000005]
    assert hls.presentation_target(within) == 4
    over = Presentation("o", "audio", 4.0, (audio("a", 1024 * 1_000_000, [4_000_002]),))
    assert hls.presentation_target(over) == 5


def test_target_keyword_is_backwards_compatible() -> None:
    r = LADDER.renditions[0]
    assert hls.media_playlist(r) == hls.media_playlist(r, target=None)
    assert hls.media_playlist(r, target=4) == hls.media_playlist(r)
    shared = hls.media_playlist(r, target=5)
    assert "#EXT-X-TARGETDURATION:5\n" in shared
    assert shared.replace(":5\n", ":4\n", 1) == hls.media_playlist(r)
    assert "#EXT-X-ENDLIST" not in hls.media_playlist(r, target=5, ended=False)


def test_a_target_shorter_than_a_segment_is_refused() -> None:
    with pytest.raises(ValueError, match="shorter than a segment of medium"):
        hls.media_playlist(LADDER.renditions[1], target=4)


def test_shared_target_over_any_renditions() -> None:
    assert hls.shared_target(LADDER.renditions) == hls.presentation_target(LADDER)
    assert hls.shared_target(LADDER.renditions[:1]) == 4
    assert hls.shared_target([]) == 1
    assert hls.segment_seconds(LADDER.renditions[0])[0] == pytest.approx(86 * 1024 / 22050)


RATES = st.sampled_from([16000, 22050, 24000, 32000, 44100, 48000])


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(RATES, st.lists(st.integers(1, 400), min_size=1, max_size=8)),
                min_size=1, max_size=4),
       st.lists(st.floats(0.04, 12.0), min_size=0, max_size=8))
def test_every_media_playlist_shares_the_ceiling_of_the_longest_segment(
        rungs: list[tuple[int, list[int]]], video_seconds: list[float]) -> None:
    renditions = [audio(f"a{i}", rate, frames) for i, (rate, frames) in enumerate(rungs)]
    if video_seconds:
        renditions += [video("v0", video_seconds), video("v1", video_seconds, 426, 240)]
    p = Presentation("x", "video" if video_seconds else "audio", 4.0, tuple(renditions))
    assert_one_target(p)
