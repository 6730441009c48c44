"""The LL-HLS playlist checker (tests/llhls_rules.py) proven on hand-written playlists: good
ones pass, and one bad variant per rule fails with that rule's id in the message. The `m3u8`
library cross-checks what our own parser reads."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import m3u8
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llhls_rules import (
    MediaPlaylist,
    check_live_media,
    check_vod_media,
    parse_attribute_list,
    parse_media,
    parse_multivariant,
)

EXPECTED = Path(__file__).parent / "expected"

# A realistic live video rendition: target 2 s, PART-TARGET 0.33334, six ~0.325 s parts per
# 1.95 s segment (segment 6 ends on a short part), PDT on every segment, parts kept for the
# last three segments (those ending within 3 target durations of the end), two parts of
# segment 13 out and the third hinted, reports for the two other renditions.
REALISTIC = '''\
#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:1
#EXT-X-PLAYLIST-TYPE:EVENT
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-START:TIME-OFFSET=0
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,HOLD-BACK=6.0,PART-HOLD-BACK=1.02
#EXT-X-PART-INF:PART-TARGET=0.33334
#EXT-X-MAP:URI="init.mp4"
#EXT-X-PROGRAM-DATE-TIME:2025-03-01T10:00:00.000Z
#EXTINF:1.95000,
seg_00001.m4s
#EXT-X-PROGRAM-DATE-TIME:2025-03-01T10:00:01.950Z
#EXTINF:1.95000,
seg_00002.m4s
#EXT-X-PROGRAM-DATE-TIME:2025-03-01T10:00:03.900Z
#EXTINF:1.95000,
seg_00003.m4s
#EXT-X-PROGRAM-DATE-TIME:2025-03-01T10:00:05.850Z
#EXTINF:1.95000,
seg_00004.m4s
#EXT-X-PROGRAM-DATE-TIME:2025-03-01T10:00:07.800Z
#EXTINF:1.95000,
seg_00005.m4s
#EXT-X-PROGRAM-DATE-TIME:2025-03-01T10:00:09.750Z
#EXTINF:1.82500,
seg_00006.m4s
#EXT-X-PROGRAM-DATE-TIME:2025-03-01T10:00:11.575Z
#EXTINF:1.95000,
seg_00007.m4s
#EXT-X-PROGRAM-DATE-TIME:2025-03-01T10:00:13.525Z
#EXTINF:1.95000,
seg_00008.m4s
#EXT-X-PROGRAM-DATE-TIME:2025-03-01T10:00:15.475Z
#EXTINF:1.95000,
seg_00009.m4s
#EXT-X-PROGRAM-DATE-TIME:2025-03-01T10:00:17.425Z
#EXT-X-PART:DURATION=0.32500,URI="seg_00010.p0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.32500,URI="seg_00010.p1.m4s"
#EXT-X-PART:DURATION=0.32500,URI="seg_00010.p2.m4s"
#EXT-X-PART:DURATION=0.32500,URI="seg_00010.p3.m4s"
#EXT-X-PART:DURATION=0.32500,URI="seg_00010.p4.m4s"
#EXT-X-PART:DURATION=0.32500,URI="seg_00010.p5.m4s"
#EXTINF:1.95000,
seg_00010.m4s
#EXT-X-PROGRAM-DATE-TIME:2025-03-01T10:00:19.375Z
#EXT-X-PART:DURATION=0.32500,URI="seg_00011.p0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.32500,URI="seg_00011.p1.m4s"
#EXT-X-PART:DURATION=0.32500,URI="seg_00011.p2.m4s"
#EXT-X-PART:DURATION=0.32500,URI="seg_00011.p3.m4s"
#EXT-X-PART:DURATION=0.32500,URI="seg_00011.p4.m4s"
#EXT-X-PART:DURATION=0.32500,URI="seg_00011.p5.m4s"
#EXTINF:1.95000,
seg_00011.m4s
#EXT-X-PROGRAM-DATE-TIME:2025-03-01T10:00:21.325Z
#EXT-X-PART:DURATION=0.32500,URI="seg_00012.p0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.32500,URI="seg_00012.p1.m4s"
#EXT-X-PART:DURATION=0.32500,URI="seg_00012.p2.m4s"
#EXT-X-PART:DURATION=0.32500,URI="seg_00012.p3.m4s"
#EXT-X-PART:DURATION=0.32500,URI="seg_00012.p4.m4s"
#EXT-X-PART:DURATION=0.32500,URI="seg_00012.p5.m4s"
#EXTINF:1.95000,
seg_00012.m4s
#EXT-X-PROGRAM-DATE-TIME:2025-03-01T10:00:23.275Z
#EXT-X-PART:DURATION=0.32500,URI="seg_00013.p0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.32500,URI="seg_00013.p1.m4s"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg_00013.p2.m4s"
#EXT-X-RENDITION-REPORT:URI="../v360/live.m3u8",LAST-MSN=13,LAST-PART=1
#EXT-X-RENDITION-REPORT:URI="../audio_en/live.m3u8",LAST-MSN=13,LAST-PART=1
'''

# The same moment as a delta update (_HLS_skip=YES): segments 1-5 skipped; what stays listed
# (1.825 + 6 x 1.95 + 0.65 = 14.175 s) covers CAN-SKIP-UNTIL=12.
REALISTIC_DELTA = '''\
#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:1
#EXT-X-PLAYLIST-TYPE:EVENT
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-START:TIME-OFFSET=0
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,HOLD-BACK=6.0,PART-HOLD-BACK=1.02
#EXT-X-PART-INF:PART-TARGET=0.33334
#EXT-X-MAP:URI="init.mp4"
#EXT-X-SKIP:SKIPPED-SEGMENTS=5
#EXT-X-PROGRAM-DATE-TIME:2025-03-01T10:00:09.750Z
#EXTINF:1.82500,
seg_00006.m4s
#EXT-X-PROGRAM-DATE-TIME:2025-03-01T10:00:11.575Z
#EXTINF:1.95000,
seg_00007.m4s
#EXT-X-PROGRAM-DATE-TIME:2025-03-01T10:00:13.525Z
#EXTINF:1.95000,
seg_00008.m4s
#EXT-X-PROGRAM-DATE-TIME:2025-03-01T10:00:15.475Z
#EXTINF:1.95000,
seg_00009.m4s
#EXT-X-PROGRAM-DATE-TIME:2025-03-01T10:00:17.425Z
#EXT-X-PART:DURATION=0.32500,URI="seg_00010.p0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.32500,URI="seg_00010.p1.m4s"
#EXT-X-PART:DURATION=0.32500,URI="seg_00010.p2.m4s"
#EXT-X-PART:DURATION=0.32500,URI="seg_00010.p3.m4s"
#EXT-X-PART:DURATION=0.32500,URI="seg_00010.p4.m4s"
#EXT-X-PART:DURATION=0.32500,URI="seg_00010.p5.m4s"
#EXTINF:1.95000,
seg_00010.m4s
#EXT-X-PROGRAM-DATE-TIME:2025-03-01T10:00:19.375Z
#EXT-X-PART:DURATION=0.32500,URI="seg_00011.p0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.32500,URI="seg_00011.p1.m4s"
#EXT-X-PART:DURATION=0.32500,URI="seg_00011.p2.m4s"
#EXT-X-PART:DURATION=0.32500,URI="seg_00011.p3.m4s"
#EXT-X-PART:DURATION=0.32500,URI="seg_00011.p4.m4s"
#EXT-X-PART:DURATION=0.32500,URI="seg_00011.p5.m4s"
#EXTINF:1.95000,
seg_00011.m4s
#EXT-X-PROGRAM-DATE-TIME:2025-03-01T10:00:21.325Z
#EXT-X-PART:DURATION=0.32500,URI="seg_00012.p0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.32500,URI="seg_00012.p1.m4s"
#EXT-X-PART:DURATION=0.32500,URI="seg_00012.p2.m4s"
#EXT-X-PART:DURATION=0.32500,URI="seg_00012.p3.m4s"
#EXT-X-PART:DURATION=0.32500,URI="seg_00012.p4.m4s"
#EXT-X-PART:DURATION=0.32500,URI="seg_00012.p5.m4s"
#EXTINF:1.95000,
seg_00012.m4s
#EXT-X-PROGRAM-DATE-TIME:2025-03-01T10:00:23.275Z
#EXT-X-PART:DURATION=0.32500,URI="seg_00013.p0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.32500,URI="seg_00013.p1.m4s"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg_00013.p2.m4s"
#EXT-X-RENDITION-REPORT:URI="../v360/live.m3u8",LAST-MSN=13,LAST-PART=1
#EXT-X-RENDITION-REPORT:URI="../audio_en/live.m3u8",LAST-MSN=13,LAST-PART=1
'''

SEGMENTS = [[0.325] * 6] * 5 + [[0.325] * 5 + [0.2]] + [[0.325] * 6] * 6  # msn 1..12
TRAILING = [0.325, 0.325]  # msn 13, in progress
PDT0 = datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC)
REPORTS = ("../v360/live.m3u8", "../audio_en/live.m3u8")


def stamp(t: float) -> str:
    return (PDT0 + timedelta(seconds=t)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build(segments: Sequence[Sequence[float]], *, trailing: Sequence[float] = (),
          parts_from: int | None = None, msn0: int = 1, skipped: int = 0, td: int = 2,
          pt: float = 0.33334, phb: float = 1.02, version: int = 9,
          independent_segments: bool = True, all_independent: bool = False, hint: bool = True,
          ended: bool = False, reports: Sequence[str] = REPORTS) -> str:
    """A live LL-HLS media playlist: `segments` lists each complete segment's part durations
    (its EXTINF is their sum), parts listed from msn `parts_from` on, `trailing` the parts of
    the segment in progress; a PDT before every listed segment."""
    segments = [[round(d, 5) for d in s] for s in segments]
    trailing = [round(d, 5) for d in trailing]
    out = ["#EXTM3U", f"#EXT-X-VERSION:{version}", f"#EXT-X-TARGETDURATION:{td}",
           f"#EXT-X-MEDIA-SEQUENCE:{msn0}", "#EXT-X-PLAYLIST-TYPE:EVENT"]
    if independent_segments:
        out.append("#EXT-X-INDEPENDENT-SEGMENTS")
    out += ["#EXT-X-START:TIME-OFFSET=0",
            f"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={6 * td:.1f},"
            f"HOLD-BACK={3 * td:.1f},PART-HOLD-BACK={phb}",
            f"#EXT-X-PART-INF:PART-TARGET={pt}",
            '#EXT-X-MAP:URI="init.mp4"']
    if skipped:
        out.append(f"#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}")

    def parts(msn: int, durations: Sequence[float]) -> None:
        for k, d in enumerate(durations):
            flag = ",INDEPENDENT=YES" if k == 0 or all_independent else ""
            out.append(f'#EXT-X-PART:DURATION={d:.5f},URI="seg_{msn:05d}.p{k}.m4s"{flag}')

    t = 0.0
    for i, durations in enumerate(segments):
        msn = msn0 + i
        if i >= skipped:
            out.append(f"#EXT-X-PROGRAM-DATE-TIME:{stamp(t)}")
            if parts_from is not None and msn >= parts_from:
                parts(msn, durations)
            out += [f"#EXTINF:{sum(durations):.5f},", f"seg_{msn:05d}.m4s"]
        t += sum(durations)
    next_msn = msn0 + len(segments)
    if trailing:
        out.append(f"#EXT-X-PROGRAM-DATE-TIME:{stamp(t)}")
        parts(next_msn, trailing)
    if hint:
        out.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg_{next_msn:05d}.p{len(trailing)}.m4s"')
    if ended:
        out.append("#EXT-X-ENDLIST")
    for uri in reports:
        last_msn, last_part = ((next_msn, len(trailing) - 1) if trailing
                               else (next_msn - 1, len(segments[-1]) - 1))
        out.append(f'#EXT-X-RENDITION-REPORT:URI="{uri}",LAST-MSN={last_msn},LAST-PART={last_part}')
    return "\n".join(out) + "\n"


def swap(text: str, old: str, new: str, count: int = 1) -> str:
    """`text` with `old` replaced (`count` times, -1: all); `old` must be there."""
    assert old in text, f"{old!r} is not in the playlist"
    return text.replace(old, new, count)


def drop(text: str, pattern: str) -> str:
    """`text` without the lines matching the regular expression `pattern` (at least one)."""
    lines = text.split("\n")
    kept = [ln for ln in lines if not re.search(pattern, ln)]
    assert len(kept) < len(lines), f"no line matches {pattern!r}"
    return "\n".join(kept)


def assert_matches_m3u8(text: str, pl: MediaPlaylist) -> None:
    """What the m3u8 library reads from `text` agrees with our parse."""
    ref = m3u8.loads(text)
    assert (ref.version, ref.target_duration, ref.media_sequence) == (
        pl.version, pl.target_duration, pl.media_sequence)
    assert (ref.playlist_type or "").upper() == (pl.playlist_type or "")
    assert ref.is_independent_segments == pl.independent_segments
    assert ref.is_endlist == pl.ended
    complete = [s for s in ref.segments if s.uri]
    in_progress = [s for s in ref.segments if not s.uri]
    assert [(s.uri, s.duration, s.program_date_time) for s in complete] == [
        (s.uri, s.duration, s.pdt) for s in pl.segments]

    def parts(ps: Sequence[object]) -> list[tuple[object, ...]]:
        return [(p.uri, p.duration, p.independent == "YES") for p in ps]  # type: ignore[attr-defined]

    assert [parts(s.parts) for s in complete] == [
        [(p.uri, p.duration, p.independent) for p in s.parts] for s in pl.segments]
    assert (parts(in_progress[0].parts) if in_progress else []) == [
        (p.uri, p.duration, p.independent) for p in pl.trailing_parts]
    assert (ref.part_inf.part_target if ref.part_inf else None) == pl.part_target
    sc = ref.server_control
    if sc is None:
        assert pl.server_control == {}
    else:
        assert (sc.can_block_reload == "YES") == (
            pl.server_control.get("CAN-BLOCK-RELOAD") is True)
        assert sc.part_hold_back == pl.server_control.get("PART-HOLD-BACK")
        assert sc.hold_back == pl.server_control.get("HOLD-BACK")
        assert sc.can_skip_until == pl.server_control.get("CAN-SKIP-UNTIL")
    hint = ref.preload_hint
    assert ([(hint.hint_type, hint.uri)] if hint else []) == [
        (h.type, h.uri) for h in pl.preload_hints]
    assert [(r.uri, r.last_msn, r.last_part) for r in ref.rendition_reports] == [
        (r.uri, r.last_msn, r.last_part) for r in pl.rendition_reports]
    assert (ref.skip.skipped_segments if ref.skip else None) == pl.skipped_segments


def realistic(**kwargs: object) -> str:
    args: dict[str, object] = {"trailing": TRAILING, "parts_from": 10}
    args.update(kwargs)
    return build(SEGMENTS, **args)  # type: ignore[arg-type]


# --- the good playlists ---------------------------------------------------------------------


def test_the_builder_writes_the_hand_written_playlists() -> None:
    assert realistic() == REALISTIC
    assert realistic(skipped=5) == REALISTIC_DELTA


def test_realistic_live_playlist_passes() -> None:
    pl = check_live_media(REALISTIC, target_duration=2)
    assert (pl.version, pl.target_duration, pl.media_sequence, pl.playlist_type) == (
        9, 2, 1, "EVENT")
    assert pl.independent_segments and pl.start_offset == 0 and not pl.ended
    assert pl.server_control == {"CAN-BLOCK-RELOAD": True, "CAN-SKIP-UNTIL": 12.0,
                                 "HOLD-BACK": 6.0, "PART-HOLD-BACK": 1.02}
    assert pl.part_target == 0.33334 and pl.map_uri == "init.mp4"
    assert [s.msn for s in pl.segments] == list(range(1, 13))
    assert [len(s.parts) for s in pl.segments] == [0] * 9 + [6] * 3
    assert pl.segments[5].duration == 1.825 and pl.segments[5].uri == "seg_00006.m4s"
    assert pl.segments[6].pdt == PDT0 + timedelta(seconds=11.575)
    assert len(pl.program_date_times) == 13 and pl.trailing_pdt == PDT0 + timedelta(
        seconds=23.275)
    assert pl.segments[9].parts[0].independent and not pl.segments[9].parts[1].independent
    assert [p.uri for p in pl.trailing_parts] == ["seg_00013.p0.m4s", "seg_00013.p1.m4s"]
    assert [(h.type, h.uri) for h in pl.preload_hints] == [("PART", "seg_00013.p2.m4s")]
    assert [(r.uri, r.last_msn, r.last_part) for r in pl.rendition_reports] == [
        ("../v360/live.m3u8", 13, 1), ("../audio_en/live.m3u8", 13, 1)]
    assert (pl.last_msn, pl.last_part, pl.next_msn, pl.skipped_segments) == (13, 1, 13, None)
    assert_matches_m3u8(REALISTIC, pl)


def test_realistic_delta_update_passes() -> None:
    earlier = parse_media(realistic(trailing=[0.325]))
    pl = check_live_media(REALISTIC_DELTA, target_duration=2, previous=earlier)
    assert pl.skipped_segments == 5 and pl.first_msn == 6
    assert [s.msn for s in pl.segments] == list(range(6, 13))
    assert pl.segments[0].pdt == PDT0 + timedelta(seconds=9.75)
    assert (pl.last_msn, pl.last_part) == (13, 1)
    assert_matches_m3u8(REALISTIC_DELTA, pl)
    # the same moment as a full playlist and as a delta update list the same recent media
    full = parse_media(REALISTIC)
    assert [(s.msn, s.uri, s.duration) for s in full.segments[5:]] == [
        (s.msn, s.uri, s.duration) for s in pl.segments]


@pytest.mark.parametrize("text,kwargs", [
    pytest.param(realistic(independent_segments=False, all_independent=True), {"audio": True},
                 id="audio-every-part-independent"),
    pytest.param(realistic(independent_segments=False), {}, id="first-parts-independent"),
    pytest.param(realistic(parts_from=9), {}, id="parts-kept-longer"),
    pytest.param(drop(realistic(parts_from=8), r'URI="seg_0000[89]\.p'), {},
                 id="parts-dropped-once-outside-the-window"),
    pytest.param(realistic(trailing=(), parts_from=9), {}, id="segment-just-completed"),
    pytest.param(build([], trailing=[0.325]), {}, id="first-part-of-the-stream"),
    pytest.param(build([], reports=()), {}, id="nothing-yet"),
    pytest.param(realistic(trailing=(), parts_from=9, hint=False, ended=True), {},
                 id="event-ended"),
    pytest.param(realistic(skipped=6), {}, id="delta-skipping-up-to-the-boundary"),
    pytest.param(swap(REALISTIC, "DURATION=0.32500,URI=\"seg_00013.p1.m4s\"",
                      "DURATION=0.10000,URI=\"seg_00013.p1.m4s\""), {},
                 id="short-newest-part"),
    pytest.param(swap(REALISTIC, "DURATION=0.32500,URI=\"seg_00013.p1.m4s\"",
                      "DURATION=0.33334,URI=\"seg_00013.p1.m4s\""), {},
                 id="part-of-exactly-part-target"),
    pytest.param(swap(REALISTIC, "10:00:17.425Z", "10:00:17.426Z"), {},
                 id="pdt-1ms-off"),
    pytest.param(swap(REALISTIC, '"../v360/live.m3u8"', '"../v360,low/live.m3u8?a=1,b=2"'), {},
                 id="quoted-commas-in-a-report-uri"),
    pytest.param(REALISTIC.replace("\n", "\r\n"), {}, id="crlf"),
])
def test_good_live_variants_pass(text: str, kwargs: dict[str, bool]) -> None:
    pl = check_live_media(text, **kwargs)
    assert_matches_m3u8(text, pl)


def test_quoted_commas_in_attribute_values_parse() -> None:
    attrs = parse_attribute_list('URI="../a,b=c/x.m3u8",LAST-MSN=3,EMPTY="",RESOLUTION=640x360')
    assert dict(attrs) == {"URI": "../a,b=c/x.m3u8", "LAST-MSN": "3", "EMPTY": "",
                           "RESOLUTION": "640x360"}
    assert attrs.quoted == {"URI", "EMPTY"}
    text = swap(REALISTIC, '"../v360/live.m3u8"', '"../v360,low/live.m3u8?a=1,b=2"')
    pl = parse_media(text)
    assert pl.rendition_reports[0].uri == "../v360,low/live.m3u8?a=1,b=2"
    assert (pl.rendition_reports[0].last_msn, pl.rendition_reports[0].last_part) == (13, 1)
    part = parse_media(swap(REALISTIC, 'URI="seg_00013.p0.m4s"', 'URI="p,0.m4s",BYTERANGE="1000@20"'))
    assert (part.trailing_parts[0].uri, part.trailing_parts[0].byterange) == ("p,0.m4s", (1000, 20))


@pytest.mark.parametrize("text", [
    "", "A", "A=", "a=1", "A=1,", "A=1,,B=2", "A=1,A=2", "A= 1", 'A="x', 'A="x"y', "A=x y",
    'A=x"y', " A=1", "A=1 ",
])
def test_malformed_attribute_lists_fail(text: str) -> None:
    with pytest.raises(AssertionError, match=r"\[attribute-list\]"):
        parse_attribute_list(text)


# --- one bad variant per rule -------------------------------------------------------------


R, D = REALISTIC, REALISTIC_DELTA
HINT = '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg_00013.p2.m4s"'


def part(uri: str, duration: str = "0.32500") -> str:
    return f'DURATION={duration},URI="{uri}"'


def seg_extinf(msn: int, duration: str = "1.95000") -> str:
    return f"#EXTINF:{duration},\nseg_{msn:05d}.m4s"


LIVE_BAD = [
    ("no-extm3u", swap(R, "#EXTM3U\n", ""), {}, r"\[extm3u\]"),
    ("bom", "\ufeff" + R, {}, r"\[extm3u\].*byte order mark"),
    ("no-version", swap(R, "#EXT-X-VERSION:9\n", ""), {}, r"\[version\] EXT-X-VERSION is missing"),
    ("delta-below-version-9", swap(D, "#EXT-X-VERSION:9", "#EXT-X-VERSION:8"), {},
     r"\[version\] EXT-X-SKIP .*>= 9, found EXT-X-VERSION:8"),
    ("map-below-version-6", swap(R, "VERSION:9", "VERSION:5"), {}, r"\[version\] EXT-X-MAP"),
    ("no-targetduration", swap(R, "#EXT-X-TARGETDURATION:2\n", ""), {},
     r"\[targetduration\] EXT-X-TARGETDURATION is missing"),
    ("float-targetduration", swap(R, "TARGETDURATION:2", "TARGETDURATION:2.0"), {},
     r"\[targetduration\].*decimal-integer"),
    ("other-targetduration", R, {"target_duration": 4}, r"\[targetduration\].*expected 4"),
    ("extinf-rounds-over-target", swap(R, seg_extinf(1), seg_extinf(1, "2.60000")), {},
     r"\[extinf-rounded\] segment 1 "),
    ("extinf-over-target", swap(R, seg_extinf(1), seg_extinf(1, "2.20000")), {},
     r"\[extinf-max\] segment 1 .*2\.2"),
    ("extinf-zero", swap(R, seg_extinf(1), seg_extinf(1, "0.00000")), {}, r"\[extinf\]"),
    ("extinf-no-comma", swap(R, "#EXTINF:1.95000,\nseg_00001", "#EXTINF:1.95000\nseg_00001"), {},
     r"\[syntax\].*EXTINF"),
    ("type-vod-while-live", swap(R, "TYPE:EVENT", "TYPE:VOD"), {}, r"\[playlist-type\]"),
    ("no-type", swap(R, "#EXT-X-PLAYLIST-TYPE:EVENT\n", ""), {}, r"\[playlist-type\]"),
    ("no-media-sequence", swap(R, "#EXT-X-MEDIA-SEQUENCE:1\n", ""), {}, r"\[media-sequence\]"),
    ("no-start", swap(R, "#EXT-X-START:TIME-OFFSET=0\n", ""), {}, r"\[start\].*missing"),
    ("start-not-0", swap(R, "TIME-OFFSET=0", "TIME-OFFSET=-6.0"), {}, r"\[start\].*-6"),
    ("no-map", drop(R, r"^#EXT-X-MAP"), {}, r"\[map\] EXT-X-MAP is missing"),
    ("map-after-first-segment", swap(drop(R, r"^#EXT-X-MAP"), "seg_00001.m4s\n",
                                     'seg_00001.m4s\n#EXT-X-MAP:URI="init.mp4"\n'), {},
     r"\[map\].*after the first media line"),
    ("no-part-inf", drop(R, r"^#EXT-X-PART-INF"), {}, r"\[part-inf\]"),
    ("part-over-target", swap(R, part("seg_00011.p5.m4s"), part("seg_00011.p5.m4s", "0.33400")),
     {}, r"\[part-duration-max\] segment 11 .*part 5 .*0\.334 > PART-TARGET 0\.33334"),
    ("part-over-target-by-1e-5", swap(R, part("seg_00013.p1.m4s"),
                                      part("seg_00013.p1.m4s", "0.33335")), {},
     r"\[part-duration-max\]"),
    ("part-under-85-percent", swap(R, part("seg_00010.p2.m4s"),
                                   part("seg_00010.p2.m4s", "0.28000")), {},
     r"\[part-duration-min\] segment 10 .*part 2 "),
    ("trailing-part-under-85-percent", swap(R, part("seg_00013.p0.m4s"),
                                            part("seg_00013.p0.m4s", "0.10000")), {},
     r"\[part-duration-min\] segment 13 \(in progress\) part 0"),
    ("parts-do-not-sum-to-extinf", swap(R, seg_extinf(11), seg_extinf(11, "1.90000")), {},
     r"\[parts-sum\] segment 11 .*1\.950000 s, EXTINF is 1\.9"),
    ("trailing-parts-beyond-target", realistic(trailing=[0.325] * 7), {},
     r"\[parts-sum\] segment 13 \(in progress\)"),
    ("parts-removed-within-3-targets", drop(R, r'URI="seg_00010\.p'), {},
     r"\[parts-recent\] segment 10 .*within 3 target durations"),
    ("parts-removed-out-of-order", drop(R, r'URI="seg_00011\.p'), {},
     r"\[parts-recent\] segment 11 .*oldest first"),
    ("no-parts-at-all", drop(R, r"^#EXT-X-PART:"), {}, r"\[parts-recent\]"),
    ("no-server-control", drop(R, r"^#EXT-X-SERVER-CONTROL"), {},
     r"\[server-control\] EXT-X-SERVER-CONTROL is missing"),
    ("no-blocking-reload", swap(R, "CAN-BLOCK-RELOAD=YES", "CAN-BLOCK-RELOAD=NO"), {},
     r"\[server-control\].*CAN-BLOCK-RELOAD=YES"),
    ("part-hold-back-1.0", swap(R, "PART-HOLD-BACK=1.02", "PART-HOLD-BACK=1.0"), {},
     r"\[server-control\] PART-HOLD-BACK 1\.0 < 3 x PART-TARGET 0\.33334"),
    ("no-part-hold-back", swap(R, ",PART-HOLD-BACK=1.02", ""), {},
     r"\[server-control\].*lacks PART-HOLD-BACK"),
    ("hold-back-short", swap(R, "HOLD-BACK=6.0", "HOLD-BACK=5.9"), {},
     r"\[server-control\] HOLD-BACK 5\.9 < 3 x"),
    ("can-skip-until-short", swap(R, "CAN-SKIP-UNTIL=12.0", "CAN-SKIP-UNTIL=11.5"), {},
     r"\[server-control\] CAN-SKIP-UNTIL 11\.5 < 6 x"),
    ("no-preload-hint", drop(R, r"^#EXT-X-PRELOAD-HINT"), {},
     r"\[preload-hint\] no EXT-X-PRELOAD-HINT:TYPE=PART"),
    ("two-part-hints", swap(R, HINT, HINT + "\n" + HINT.replace("p2", "p3")), {},
     r"\[preload-hint\] 2 EXT-X-PRELOAD-HINT:TYPE=PART"),
    ("hint-already-listed", swap(R, HINT, HINT.replace("p2", "p1")), {},
     r"\[preload-hint\].*already listed"),
    ("hint-without-uri", swap(R, HINT, "#EXT-X-PRELOAD-HINT:TYPE=PART"), {},
     r"\[preload-hint\].*no URI"),
    ("hint-type-unknown", swap(R, "TYPE=PART,", "TYPE=SEGMENT,"), {}, r"\[preload-hint\]"),
    ("hint-after-endlist", swap(R, HINT, HINT + "\n#EXT-X-ENDLIST"), {},
     r"\[preload-hint\].*ENDLIST"),
    ("ended-with-an-open-segment", swap(R, HINT + "\n", "#EXT-X-ENDLIST\n"), {},
     r"\[endlist\] EXT-X-ENDLIST with 2 parts after the last segment"),
    ("no-pdt", drop(R, r"^#EXT-X-PROGRAM-DATE-TIME"), {},
     r"\[pdt\] no EXT-X-PROGRAM-DATE-TIME for the first segment"),
    ("no-pdt-on-first-segment", swap(R, "#EXT-X-PROGRAM-DATE-TIME:2025-03-01T10:00:00.000Z\n",
                                     ""), {}, r"\[pdt\] no .*first segment \(msn 1\)"),
    ("pdt-off-by-5ms", swap(R, "10:00:17.425Z", "10:00:17.430Z"), {},
     r"\[pdt\] segment 10 .*\+5\.0 ms"),
    ("pdt-without-time-zone", swap(R, "10:00:00.000Z", "10:00:00.000"), {},
     r"\[pdt\].*time zone"),
    ("delta-without-pdt-after-skip",
     swap(D, "#EXT-X-PROGRAM-DATE-TIME:2025-03-01T10:00:09.750Z\n", ""), {},
     r"\[pdt\] no .*the first segment after EXT-X-SKIP \(msn 6\)"),
    ("not-independent", swap(swap(R, "#EXT-X-INDEPENDENT-SEGMENTS\n", ""), ",INDEPENDENT=YES",
                             "", -1), {}, r"\[independent\]"),
    ("first-part-not-independent",
     swap(swap(R, "#EXT-X-INDEPENDENT-SEGMENTS\n", ""), 'p0.m4s",INDEPENDENT=YES\n'
          '#EXT-X-PART:DURATION=0.32500,URI="seg_00011.p1', 'p0.m4s"\n'
          '#EXT-X-PART:DURATION=0.32500,URI="seg_00011.p1'), {},
     r"\[independent\] .*segment 11 \(seg_00011.p0.m4s\)"),
    ("audio-part-not-independent", R, {"audio": True},
     r"\[independent\] segment 10 .*part 1 .*audio part"),
    ("report-without-last-part", swap(R, ",LAST-PART=1\n", "\n"), {},
     r"\[rendition-report\].*lacks LAST-PART"),
    ("report-without-uri", swap(R, 'URI="../v360/live.m3u8",', ""), {},
     r"\[rendition-report\].*lacks URI"),
    ("delta-not-advertised", swap(D, "CAN-SKIP-UNTIL=12.0,", ""), {},
     r"\[skip\].*advertises no CAN-SKIP-UNTIL"),
    ("delta-past-the-skip-boundary", realistic(skipped=7), {},
     r"\[skip\].*Skip Boundary: only 10\.400 s stay listed, CAN-SKIP-UNTIL is 12\.0"),
    ("skip-after-a-segment", swap(drop(D, r"^#EXT-X-SKIP"), "seg_00006.m4s\n",
                                  "seg_00006.m4s\n#EXT-X-SKIP:SKIPPED-SEGMENTS=5\n"), {},
     r"\[skip\].*after the first media line"),
    ("two-skips", swap(D, "#EXT-X-SKIP:SKIPPED-SEGMENTS=5\n",
                       "#EXT-X-SKIP:SKIPPED-SEGMENTS=5\n#EXT-X-SKIP:SKIPPED-SEGMENTS=5\n"), {},
     r"\[duplicate-tag\].*EXT-X-SKIP"),
    ("two-targetdurations", swap(R, "#EXT-X-TARGETDURATION:2\n",
                                 "#EXT-X-TARGETDURATION:2\n#EXT-X-TARGETDURATION:2\n"), {},
     r"\[duplicate-tag\].*EXT-X-TARGETDURATION"),
    ("unquoted-uri", swap(R, 'URI="init.mp4"', "URI=init.mp4"), {},
     r"\[attribute-list\].*URI must be a quoted-string"),
    ("space-in-attribute-list", swap(R, "CAN-BLOCK-RELOAD=YES,", "CAN-BLOCK-RELOAD=YES, "), {},
     r"\[attribute-list\]"),
    ("quoted-duration", swap(R, part("seg_00013.p0.m4s"), 'DURATION="0.32500",URI="x.m4s"'), {},
     r"\[attribute-list\].*DURATION must not be quoted"),
    ("extinf-without-uri", R + "#EXTINF:1.00000,\n", {}, r"\[syntax\].*without a URI line"),
    ("uri-without-extinf", swap(R, "#EXTINF:1.95000,\nseg_00002", "seg_00002"), {},
     r"\[syntax\].*without a preceding #EXTINF"),
    ("multivariant-tag", swap(R, "#EXT-X-INDEPENDENT-SEGMENTS\n",
                              "#EXT-X-STREAM-INF:BANDWIDTH=1\n"), {}, r"\[playlist-kind\]"),
]


@pytest.mark.parametrize("text,kwargs,rule", [pytest.param(t, k, r, id=i) for i, t, k, r in
                                              LIVE_BAD])
def test_bad_live_variant_fails(text: str, kwargs: dict[str, object], rule: str) -> None:
    with pytest.raises(AssertionError, match=rule):
        check_live_media(text, **kwargs)  # type: ignore[arg-type]


# --- reload rules (previous: the last full playlist the same client saw) ------------------


EARLIER = realistic(trailing=[0.325])  # one part before REALISTIC
SEGMENT_12_OPEN = build(SEGMENTS[:11], trailing=[0.325] * 5, parts_from=10)


@pytest.mark.parametrize("previous,text", [
    pytest.param(EARLIER, R, id="one-more-part"),
    pytest.param(R, R, id="unchanged"),
    pytest.param(EARLIER, D, id="delta-update"),
    pytest.param(SEGMENT_12_OPEN, R, id="segment-completed"),
    pytest.param(R, build([*SEGMENTS, [0.325] * 6], parts_from=10, hint=False, ended=True),
                 id="ended"),
    pytest.param(R, build([*SEGMENTS, [0.325] * 6], trailing=[0.325], parts_from=11),
                 id="parts-aged-out"),
])
def test_good_reloads_pass(previous: str, text: str) -> None:
    check_live_media(text, previous=parse_media(previous))


RELOAD_BAD = [
    ("media-sequence-changed", EARLIER, swap(R, "MEDIA-SEQUENCE:1", "MEDIA-SEQUENCE:2"),
     r"\[reload\] EXT-X-MEDIA-SEQUENCE changed 1 -> 2"),
    ("segment-uri-changed", EARLIER, swap(R, "seg_00003.m4s", "seg_00003b.m4s"),
     r"\[reload\] segment 3 changed: seg_00003.m4s 1.95 -> seg_00003b.m4s 1.95"),
    ("segment-duration-changed", swap(EARLIER, seg_extinf(3), seg_extinf(3, "1.94000")), R,
     r"\[reload\] segment 3 changed"),
    ("delta-segment-changed", swap(EARLIER, seg_extinf(8), seg_extinf(8, "1.94000")), D,
     r"\[reload\] segment 8 changed"),
    ("pdt-changed", swap(EARLIER, "10:00:05.850Z", "10:00:06.850Z"), R,
     r"\[reload\] segment 4: PROGRAM-DATE-TIME changed"),
    ("target-duration-changed", swap(EARLIER, "TARGETDURATION:2", "TARGETDURATION:3"), R,
     r"\[reload\] EXT-X-TARGETDURATION changed 3 -> 2"),
    ("went-backwards", R, EARLIER, r"\[reload\] went backwards: last msn/part 13/1 -> 13/0"),
    ("trailing-part-changed", swap(EARLIER, 'URI="seg_00013.p0.m4s"', 'URI="seg_00013.q0.m4s"'),
     R, r"\[reload\] segment 13 \(in progress\) part 0 changed"),
    ("completed-segment-part-changed",
     swap(SEGMENT_12_OPEN, part("seg_00012.p3.m4s"), part("seg_00012.p3.m4s", "0.30000")), R,
     r"\[reload\] segment 12 part 3 changed"),
    ("endlist-went-away", realistic(trailing=(), parts_from=9, hint=False, ended=True), R,
     r"\[reload\] EXT-X-ENDLIST went away"),
]


@pytest.mark.parametrize("previous,text,rule", [pytest.param(p, t, r, id=i) for i, p, t, r in
                                                RELOAD_BAD])
def test_bad_reload_fails(previous: str, text: str, rule: str) -> None:
    check_live_media(text)  # each playlist is fine on its own
    with pytest.raises(AssertionError, match=rule):
        check_live_media(text, previous=parse_media(previous))


# --- sealed (VOD) playlists ---------------------------------------------------------------


VOD = """\
#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:5
#EXT-X-MEDIA-SEQUENCE:1
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init.mp4"
#EXTINF:4.010667,
seg_00001.m4s
#EXTINF:3.989333,
seg_00002.m4s
#EXTINF:2.176000,
seg_00003.m4s
#EXT-X-ENDLIST
"""


def test_vod_passes() -> None:
    pl = check_vod_media(VOD, target_duration=5)
    assert [(s.msn, s.uri, s.duration) for s in pl.segments] == [
        (1, "seg_00001.m4s", 4.010667), (2, "seg_00002.m4s", 3.989333),
        (3, "seg_00003.m4s", 2.176)]
    assert pl.ended and pl.playlist_type == "VOD" and not pl.preload_hints
    assert_matches_m3u8(VOD, pl)
    single = "\n".join(ln for ln in VOD.splitlines() if "seg_00002" not in ln
                       and "seg_00003" not in ln and "3.989333" not in ln
                       and "2.176000" not in ln)
    check_vod_media(swap(single, "#EXTINF:4.010667,", "#EXTINF:0.500000,"))  # one short segment


VOD_BAD = [
    ("event", swap(VOD, "TYPE:VOD", "TYPE:EVENT"), {}, r"\[playlist-type\]"),
    ("no-type", swap(VOD, "#EXT-X-PLAYLIST-TYPE:VOD\n", ""), {}, r"\[playlist-type\]"),
    ("no-endlist", swap(VOD, "#EXT-X-ENDLIST\n", ""), {}, r"\[endlist\]"),
    ("preload-hint", swap(VOD, "#EXT-X-ENDLIST", '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="x.m4s"\n'
                          "#EXT-X-ENDLIST"), {}, r"\[preload-hint\]"),
    ("no-map", drop(VOD, r"^#EXT-X-MAP"), {}, r"\[map\]"),
    ("extinf-over-target", swap(VOD, "4.010667", "5.200000"), {}, r"\[extinf-max\]"),
    ("extinf-rounds-over", swap(VOD, "4.010667", "5.600000"), {}, r"\[extinf-rounded\]"),
    ("near-empty-tail", swap(VOD, "2.176000", "1.000000"), {}, r"\[vod-tail\].*1\.0 s < 0\.25"),
    ("parts-after-last-segment", swap(VOD, "#EXT-X-ENDLIST",
                                      '#EXT-X-PART:DURATION=0.5,URI="p.m4s"\n#EXT-X-ENDLIST'), {},
     r"\[vod-tail\]"),
    ("other-target", VOD, {"target_duration": 4}, r"\[targetduration\].*expected 4"),
    ("no-segments", drop(VOD, r"seg_|EXTINF"), {}, r"\[vod-tail\]"),
]


@pytest.mark.parametrize("text,kwargs,rule", [pytest.param(t, k, r, id=i) for i, t, k, r in
                                              VOD_BAD])
def test_bad_vod_variant_fails(text: str, kwargs: dict[str, int], rule: str) -> None:
    with pytest.raises(AssertionError, match=rule):
        check_vod_media(text, **kwargs)


def test_a_live_playlist_is_not_a_vod_one() -> None:
    with pytest.raises(AssertionError, match=r"\[playlist-type\]"):
        check_vod_media(REALISTIC)


# --- multivariant -------------------------------------------------------------------------


MULTIVARIANT = """\
#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English, main",LANGUAGE="en",DEFAULT=YES,\
AUTOSELECT=YES,CHANNELS="2",URI="audio_en/live.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=2500000,AVERAGE-BANDWIDTH=2000000,CODECS="avc1.64001f,mp4a.40.2",\
RESOLUTION=1280x720,FRAME-RATE=30.000,AUDIO="aud"
v720/live.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=900000,AVERAGE-BANDWIDTH=700000,CODECS="avc1.4d401e,mp4a.40.2",\
RESOLUTION=640x360,FRAME-RATE=30.000,AUDIO="aud"
v360/live.m3u8
"""


def assert_multivariant_matches_m3u8(text: str) -> None:
    mv = parse_multivariant(text)
    ref = m3u8.loads(text)
    assert ref.is_variant
    assert [(p.uri, p.stream_info.bandwidth, p.stream_info.average_bandwidth,
             p.stream_info.codecs) for p in ref.playlists] == [
        (v.uri, v.bandwidth, v.average_bandwidth, v.codecs) for v in mv.variants]
    assert [(m.type, m.group_id, m.name, m.uri) for m in ref.media] == [
        (m.type, m.group_id, m.name, m.uri) for m in mv.media]


def test_multivariant_parses() -> None:
    mv = parse_multivariant(MULTIVARIANT)
    assert mv.version == 7 and mv.independent_segments
    assert [(v.uri, v.bandwidth, v.average_bandwidth, v.codecs, v.resolution, v.frame_rate,
             v.audio) for v in mv.variants] == [
        ("v720/live.m3u8", 2500000, 2000000, "avc1.64001f,mp4a.40.2", "1280x720", 30.0, "aud"),
        ("v360/live.m3u8", 900000, 700000, "avc1.4d401e,mp4a.40.2", "640x360", 30.0, "aud")]
    (media,) = mv.media
    assert (media.type, media.group_id, media.name, media.language, media.default,
            media.autoselect, media.channels, media.uri) == (
        "AUDIO", "aud", "English, main", "en", True, True, "2", "audio_en/live.m3u8")
    assert mv.media_playlist_uris == ["v720/live.m3u8", "v360/live.m3u8", "audio_en/live.m3u8"]
    assert_multivariant_matches_m3u8(MULTIVARIANT)


@pytest.mark.parametrize("name", ["audio_master.m3u8", "video_master.m3u8"])
def test_the_products_expected_multivariants_parse_alike(name: str) -> None:
    path = EXPECTED / name
    if not path.exists():
        pytest.skip(f"{path} is not there")
    assert_multivariant_matches_m3u8(path.read_text())


@pytest.mark.parametrize("text,rule", [
    pytest.param(swap(MULTIVARIANT, "BANDWIDTH=900000,", ""), r"\[variant\].*BANDWIDTH",
                 id="no-bandwidth"),
    pytest.param(swap(MULTIVARIANT, "v360/live.m3u8\n", ""), r"\[syntax\].*URI line",
                 id="stream-inf-without-uri"),
    pytest.param(MULTIVARIANT + "#EXTINF:1.0,\nx.m4s\n", r"\[playlist-kind\]", id="media-tag"),
    pytest.param(swap(MULTIVARIANT, "TYPE=AUDIO", "TYPE=SOUND"), r"\[media\]", id="media-type"),
    pytest.param(swap(MULTIVARIANT, 'CODECS="avc1.64001f,mp4a.40.2"', "CODECS=avc1.64001f"),
                 r"\[attribute-list\].*CODECS must be a quoted-string", id="unquoted-codecs"),
])
def test_bad_multivariant_fails(text: str, rule: str) -> None:
    with pytest.raises(AssertionError, match=rule):
        parse_multivariant(text)


# --- properties -----------------------------------------------------------------------------


PT = 0.33334
full_part = st.floats(min_value=0.85 * PT + 1e-5, max_value=PT).map(lambda d: round(d, 5))
last_part = st.floats(min_value=0.01, max_value=PT).map(lambda d: round(d, 5))
segment = st.tuples(st.lists(full_part, max_size=5), last_part).map(lambda t: [*t[0], t[1]])


@settings(max_examples=60, deadline=None)
@given(segments=st.lists(segment, max_size=6), trailing=st.lists(full_part, max_size=5))
def test_generated_part_durations_round_trip(segments: list[list[float]],
                                             trailing: list[float]) -> None:
    if not segments and not trailing:
        trailing = [PT]
    td = max([1, math.ceil(round(sum(trailing), 5))]
             + [math.ceil(round(sum(s), 5)) for s in segments])
    text = build(segments, trailing=trailing, parts_from=1, td=td)
    pl = check_live_media(text, target_duration=td)
    assert [[p.duration for p in s.parts] for s in pl.segments] == segments
    assert [p.duration for p in pl.trailing_parts] == trailing
    for seg, durations in zip(pl.segments, segments, strict=True):
        assert seg.duration == pytest.approx(sum(durations), abs=1e-5)
    assert_matches_m3u8(text, pl)


@settings(max_examples=40, deadline=None)
@given(segments=st.lists(segment.filter(lambda s: len(s) >= 2), min_size=1, max_size=4),
       data=st.data())
def test_a_short_inner_part_is_always_caught(segments: list[list[float]],
                                             data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(segments) - 1))
    k = data.draw(st.integers(0, len(segments[i]) - 2))
    segments[i][k] = data.draw(st.floats(min_value=0.01, max_value=0.85 * PT - 1e-4))
    td = max(math.ceil(round(sum(s), 5)) for s in segments)
    with pytest.raises(AssertionError, match=r"\[part-duration-min\]"):
        check_live_media(build(segments, parts_from=1, td=td, trailing=[PT]))
