"""A strict, independent checker of (Low-Latency) HLS playlists, for the test suite.

Our own parser, line by line, with attribute lists read per RFC 8216bis section 4.2 (quoted
strings may hold commas and '='; names are [A-Z0-9-]; no whitespace; no duplicate names). It
shares no code with the product (manifests/, packager/) so that it can catch the product's
mistakes; the `m3u8` library is used by the unit tests only, as a cross-check.

    parse_media(text) -> MediaPlaylist
    check_live_media(text, *, target_duration=None, previous=None, audio=False) -> MediaPlaylist
    check_vod_media(text, target_duration=None) -> MediaPlaylist
    parse_multivariant(text) -> MultivariantPlaylist
    parse_attribute_list(text) -> Attributes

Tests import it by bare name, `from llhls_rules import check_live_media`, the way
tests/integration imports `audio_checks`: pytest puts tests/ on sys.path for tests/conftest.py
(there is no tests/__init__.py, so `tests.llhls_rules` is not importable).

Every broken rule raises AssertionError whose message starts with the rule's id in brackets,
e.g. "[part-duration-max] ...", so a test can `pytest.raises(AssertionError, match=...)`.
Syntax errors found while parsing raise AssertionError too (ids "syntax", "attribute-list",
"duplicate-tag", ...).

Sources: draft-pantos-hls-rfc8216bis-22 (HTTP Live Streaming 2nd Edition) and Apple's "HLS
Authoring Specification for Apple Devices"; where a rule here is stricter than both, its
message says "(our rule)".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "Attributes",
    "MediaPlaylist",
    "MultivariantPlaylist",
    "Part",
    "PreloadHint",
    "Rendition",
    "RenditionReport",
    "Segment",
    "Variant",
    "check_live_media",
    "check_vod_media",
    "parse_attribute_list",
    "parse_media",
    "parse_multivariant",
]

PART_DURATION_TOLERANCE = 1e-6  # seconds: part DURATION vs PART-TARGET
PARTS_SUM_TOLERANCE = 0.001  # seconds: sum of a segment's parts vs its EXTINF
PDT_TOLERANCE = 0.002  # seconds: PROGRAM-DATE-TIME vs the EXTINF durations before it
PART_MIN_FRACTION = 0.85  # every part but a segment's last is >= 85 % of PART-TARGET
PARTS_WINDOW_TARGETS = 3  # parts may only be removed once older than 3 target durations
VOD_MIN_TAIL_FRACTION = 0.25  # our rule: no near-empty last segment in a sealed playlist


def _fail(rule: str, message: str) -> None:
    raise AssertionError(f"[{rule}] {message}")


# --- attribute lists (RFC 8216bis 4.2) --------------------------------------------------------

_NAME = re.compile(r"[A-Z0-9-]+")
_INT = re.compile(r"[0-9]{1,20}")
_FLOAT = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
_SIGNED_FLOAT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_BYTERANGE = re.compile(r"([0-9]{1,20})(?:@([0-9]{1,20}))?")


class Attributes(dict[str, str]):
    """An attribute list: name -> value (quotes removed); `quoted` names the values that were
    quoted-strings, so a reader can insist on the type the RFC gives each attribute."""

    def __init__(self, values: dict[str, str], quoted: frozenset[str]) -> None:
        super().__init__(values)
        self.quoted = quoted


def parse_attribute_list(text: str, *, where: str = "attribute list") -> Attributes:
    """`NAME=value,NAME="quoted, value",...` -> Attributes. Raises AssertionError on anything
    RFC 8216bis 4.2 does not allow (unterminated quote, whitespace, empty value, lower-case or
    repeated name, trailing comma, text after a closing quote)."""
    values: dict[str, str] = {}
    quoted: set[str] = set()
    i, n = 0, len(text)
    if n == 0:
        _fail("attribute-list", f"{where}: empty attribute list")
    while True:
        eq = text.find("=", i)
        if eq < 0:
            _fail("attribute-list", f"{where}: no '=' after {text[i:]!r} in {text!r}")
        name = text[i:eq]
        if not _NAME.fullmatch(name):
            _fail("attribute-list", f"{where}: bad attribute name {name!r} in {text!r}")
        if name in values:
            _fail("attribute-list", f"{where}: attribute {name} given twice in {text!r}")
        j = eq + 1
        if j < n and text[j] == '"':
            end = text.find('"', j + 1)
            if end < 0:
                _fail("attribute-list", f"{where}: unterminated quoted string in {text!r}")
            value = text[j + 1:end]
            quoted.add(name)
            j = end + 1
        else:
            end = text.find(",", j)
            if end < 0:
                end = n
            value = text[j:end]
            if not value:
                _fail("attribute-list", f"{where}: empty value for {name} in {text!r}")
            if any(c in value for c in ' \t"'):
                _fail("attribute-list", f"{where}: bad unquoted value {value!r} for {name}")
            j = end
        values[name] = value
        if j == n:
            break
        if text[j] != ",":
            _fail("attribute-list", f"{where}: expected ',' after {name} in {text!r}")
        i = j + 1
        if i == n:
            _fail("attribute-list", f"{where}: trailing comma in {text!r}")
    return Attributes(values, frozenset(quoted))


def _quoted(attrs: Attributes, name: str, where: str, *, required: bool = False) -> str | None:
    if name not in attrs:
        if required:
            _fail("attribute-list", f"{where}: {name} is required")
        return None
    if name not in attrs.quoted:
        _fail("attribute-list", f"{where}: {name} must be a quoted-string")
    return attrs[name]


def _unquoted(attrs: Attributes, name: str, where: str) -> str | None:
    if name not in attrs:
        return None
    if name in attrs.quoted:
        _fail("attribute-list", f"{where}: {name} must not be quoted")
    return attrs[name]


def _float_attr(attrs: Attributes, name: str, where: str, *, required: bool = False,
                signed: bool = False) -> float | None:
    raw = _unquoted(attrs, name, where)
    if raw is None:
        if required:
            _fail("attribute-list", f"{where}: {name} is required")
        return None
    if not (_SIGNED_FLOAT if signed else _FLOAT).fullmatch(raw):
        _fail("attribute-list", f"{where}: {name}={raw} is not a decimal-floating-point")
    return float(raw)


def _int_attr(attrs: Attributes, name: str, where: str) -> int | None:
    raw = _unquoted(attrs, name, where)
    if raw is None:
        return None
    if not _INT.fullmatch(raw):
        _fail("attribute-list", f"{where}: {name}={raw} is not a decimal-integer")
    return int(raw)


def _yes_no(attrs: Attributes, name: str, where: str) -> bool | None:
    raw = _unquoted(attrs, name, where)
    if raw is None:
        return None
    if raw not in ("YES", "NO"):
        _fail("attribute-list", f"{where}: {name}={raw} is neither YES nor NO")
    return raw == "YES"


def _byterange(raw: str, where: str) -> tuple[int, int | None]:
    m = _BYTERANGE.fullmatch(raw)
    if not m:
        _fail("syntax", f"{where}: bad byte range {raw!r} (want <n>[@<o>])")
    assert m is not None
    return int(m.group(1)), None if m.group(2) is None else int(m.group(2))


# --- media playlists ----------------------------------------------------------------------------


@dataclass
class Part:
    """One EXT-X-PART."""

    uri: str
    duration: float
    independent: bool = False
    byterange: tuple[int, int | None] | None = None  # (length, offset or None)
    gap: bool = False
    line: int = 0  # 1-based line number in the playlist text


@dataclass
class Segment:
    """A complete Media Segment: its EXTINF, URI line and the tags that apply to it."""

    msn: int
    uri: str
    duration: float
    title: str = ""
    parts: list[Part] = field(default_factory=list)
    pdt: datetime | None = None
    discontinuity: bool = False
    gap: bool = False
    byterange: tuple[int, int | None] | None = None
    map_uri: str | None = None  # the EXT-X-MAP in force for this segment
    line: int = 0  # line number of the URI line


@dataclass
class PreloadHint:
    type: str
    uri: str | None
    byterange_start: int | None = None
    byterange_length: int | None = None
    line: int = 0


@dataclass
class RenditionReport:
    uri: str | None
    last_msn: int | None
    last_part: int | None
    line: int = 0


@dataclass
class MediaPlaylist:
    version: int | None = None
    target_duration: int | None = None
    media_sequence: int | None = None  # None when the tag is absent (the RFC then means 0)
    discontinuity_sequence: int | None = None
    playlist_type: str | None = None  # "EVENT", "VOD" or None
    independent_segments: bool = False
    start_offset: float | None = None  # EXT-X-START:TIME-OFFSET
    start_precise: bool | None = None
    server_control: dict[str, float | bool | str] = field(default_factory=dict)
    part_target: float | None = None
    map_uri: str | None = None  # the first EXT-X-MAP's URI
    segments: list[Segment] = field(default_factory=list)
    trailing_parts: list[Part] = field(default_factory=list)  # segment in progress
    trailing_pdt: datetime | None = None  # a PROGRAM-DATE-TIME for the segment in progress
    trailing_discontinuity: bool = False
    preload_hints: list[PreloadHint] = field(default_factory=list)
    rendition_reports: list[RenditionReport] = field(default_factory=list)
    skipped_segments: int | None = None  # EXT-X-SKIP:SKIPPED-SEGMENTS; None: a full playlist
    ended: bool = False  # EXT-X-ENDLIST
    program_date_times: list[datetime] = field(default_factory=list)  # every PDT, in order
    tag_lines: dict[str, list[int]] = field(default_factory=dict)  # tag name -> line numbers
    first_media_line: int | None = None  # first EXTINF / EXT-X-PART / URI line
    other_tags: list[str] = field(default_factory=list)  # tags this module does not read

    @property
    def first_msn(self) -> int:
        """Media Sequence Number of the first listed segment (after any skipped ones)."""
        return (self.media_sequence or 0) + (self.skipped_segments or 0)

    @property
    def next_msn(self) -> int:
        """Media Sequence Number of the segment after the last complete one (in progress)."""
        return self.first_msn + len(self.segments)

    @property
    def last_msn(self) -> int:
        """LAST-MSN as a rendition report would give it: the in-progress segment when it has
        parts listed, else the last complete segment."""
        return self.next_msn if self.trailing_parts else self.next_msn - 1

    @property
    def last_part(self) -> int | None:
        """LAST-PART as a rendition report would give it (None when no parts are listed)."""
        if self.trailing_parts:
            return len(self.trailing_parts) - 1
        if self.segments and self.segments[-1].parts:
            return len(self.segments[-1].parts) - 1
        return None

    @property
    def progress(self) -> tuple[int, int]:
        """(next_msn, parts of the in-progress segment): grows with every publication."""
        return self.next_msn, len(self.trailing_parts)

    @property
    def listed_duration(self) -> float:
        """Seconds of media listed: complete segments (not skipped) plus trailing parts."""
        return sum(s.duration for s in self.segments) + sum(p.duration for p in self.trailing_parts)

    @property
    def parts(self) -> list[Part]:
        """Every listed part, oldest first."""
        return [p for s in self.segments for p in s.parts] + self.trailing_parts

    def segment(self, msn: int) -> Segment | None:
        i = msn - self.first_msn
        return self.segments[i] if 0 <= i < len(self.segments) else None


_ONCE = frozenset({
    "EXTM3U", "EXT-X-VERSION", "EXT-X-TARGETDURATION", "EXT-X-MEDIA-SEQUENCE",
    "EXT-X-DISCONTINUITY-SEQUENCE", "EXT-X-PLAYLIST-TYPE", "EXT-X-ENDLIST",
    "EXT-X-INDEPENDENT-SEGMENTS", "EXT-X-START", "EXT-X-PART-INF", "EXT-X-SERVER-CONTROL",
    "EXT-X-SKIP", "EXT-X-I-FRAMES-ONLY",
})
_NO_VALUE = frozenset({
    "EXTM3U", "EXT-X-ENDLIST", "EXT-X-INDEPENDENT-SEGMENTS", "EXT-X-DISCONTINUITY",
    "EXT-X-GAP", "EXT-X-I-FRAMES-ONLY",
})
_MULTIVARIANT_ONLY = frozenset({
    "EXT-X-STREAM-INF", "EXT-X-I-FRAME-STREAM-INF", "EXT-X-MEDIA", "EXT-X-SESSION-DATA",
    "EXT-X-SESSION-KEY", "EXT-X-CONTENT-STEERING",
})
_BEFORE_FIRST_SEGMENT = frozenset({"EXT-X-MEDIA-SEQUENCE", "EXT-X-DISCONTINUITY-SEQUENCE"})


def _lines(text: str) -> list[str]:
    if text.startswith("\ufeff"):
        _fail("extm3u", "the playlist starts with a byte order mark (RFC 8216bis 4.1: MUST NOT)")
    lines = text.split("\n")
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def _split_tag(line: str, lineno: int) -> tuple[str, str | None]:
    name, colon, value = line[1:].partition(":")
    if name in _NO_VALUE and colon:
        _fail("syntax", f"line {lineno}: #{name} takes no value: {line!r}")
    return name, value if colon else None


def _int_value(name: str, value: str | None, lineno: int, rule: str) -> int:
    if value is None or not _INT.fullmatch(value):
        _fail(rule, f"line {lineno}: #{name} needs a decimal-integer, got {value!r}")
    assert value is not None
    return int(value)


def _pdt(value: str | None, lineno: int) -> datetime:
    if value is None or "T" not in value:
        _fail("pdt", f"line {lineno}: EXT-X-PROGRAM-DATE-TIME {value!r} is not an ISO 8601 "
                     "date-time")
    assert value is not None
    try:
        when: datetime | None = datetime.fromisoformat(value)
    except ValueError:
        when = None
    if when is None:
        _fail("pdt", f"line {lineno}: EXT-X-PROGRAM-DATE-TIME {value!r} does not parse")
    assert when is not None
    if when.tzinfo is None:
        _fail("pdt", f"line {lineno}: EXT-X-PROGRAM-DATE-TIME {value!r} has no time zone")
    return when


def _check_first_line(lines: list[str]) -> None:
    if not lines or lines[0] != "#EXTM3U":
        first = lines[0] if lines else ""
        _fail("extm3u", f"the first line must be exactly #EXTM3U, got {first[:60]!r}")


def parse_media(text: str) -> MediaPlaylist:
    """Parse a Media Playlist line by line. Raises AssertionError on malformed syntax (the
    rules about what a good LL-HLS playlist contains are in check_live_media / check_vod)."""
    lines = _lines(text)
    _check_first_line(lines)
    pl = MediaPlaylist()
    # tags that apply to the next segment (or, at the end, to the segment in progress)
    extinf: tuple[float, str, int] | None = None
    parts: list[Part] = []
    pdt: datetime | None = None
    discontinuity = gap = False
    seg_range: tuple[int, int | None] | None = None
    current_map: str | None = None
    segments_raw: list[Segment] = []

    def media_line(lineno: int) -> None:
        if pl.first_media_line is None:
            pl.first_media_line = lineno

    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            if line:
                _fail("syntax", f"line {lineno}: whitespace-only line")
            continue
        if line != line.strip():
            _fail("syntax", f"line {lineno}: leading or trailing whitespace in {line!r}")
        if not line.startswith("#"):
            # a segment URI line
            if extinf is None:
                _fail("syntax", f"line {lineno}: URI line {line!r} without a preceding #EXTINF")
            assert extinf is not None
            media_line(lineno)
            segments_raw.append(Segment(
                msn=-1, uri=line, duration=extinf[0], title=extinf[1], parts=parts, pdt=pdt,
                discontinuity=discontinuity, gap=gap, byterange=seg_range, map_uri=current_map,
                line=lineno))
            extinf, parts, pdt, discontinuity, gap, seg_range = None, [], None, False, False, None
            continue
        if not line.startswith("#EXT"):
            continue  # a comment
        name, value = _split_tag(line, lineno)
        where = f"line {lineno} #{name}"
        if name in _ONCE and name in pl.tag_lines:
            _fail("duplicate-tag", f"{where}: #{name} may appear only once "
                                   f"(also on line {pl.tag_lines[name][0]})")
        if name in _MULTIVARIANT_ONLY:
            _fail("playlist-kind", f"{where}: a Multivariant Playlist tag in a Media Playlist")
        if name in _BEFORE_FIRST_SEGMENT and pl.first_media_line is not None:
            _fail("syntax", f"{where}: must appear before the first Media Segment")
        pl.tag_lines.setdefault(name, []).append(lineno)

        if name == "EXTM3U":
            if lineno != 1:
                _fail("extm3u", f"{where}: #EXTM3U only on the first line")
        elif name == "EXT-X-VERSION":
            pl.version = _int_value(name, value, lineno, "version")
        elif name == "EXT-X-TARGETDURATION":
            pl.target_duration = _int_value(name, value, lineno, "targetduration")
        elif name == "EXT-X-MEDIA-SEQUENCE":
            pl.media_sequence = _int_value(name, value, lineno, "media-sequence")
        elif name == "EXT-X-DISCONTINUITY-SEQUENCE":
            pl.discontinuity_sequence = _int_value(name, value, lineno, "syntax")
        elif name == "EXT-X-PLAYLIST-TYPE":
            if value not in ("EVENT", "VOD"):
                _fail("playlist-type", f"{where}: {value!r} is neither EVENT nor VOD")
            pl.playlist_type = value
        elif name == "EXT-X-INDEPENDENT-SEGMENTS":
            pl.independent_segments = True
        elif name == "EXT-X-ENDLIST":
            pl.ended = True
        elif name == "EXT-X-START":
            attrs = parse_attribute_list(value or "", where=where)
            pl.start_offset = _float_attr(attrs, "TIME-OFFSET", where, required=True, signed=True)
            pl.start_precise = _yes_no(attrs, "PRECISE", where)
        elif name == "EXT-X-SERVER-CONTROL":
            attrs = parse_attribute_list(value or "", where=where)
            sc: dict[str, float | bool | str] = {}
            for key in attrs:
                if key.startswith("CAN-") and key != "CAN-SKIP-UNTIL":
                    sc[key] = bool(_yes_no(attrs, key, where))
                elif key in ("CAN-SKIP-UNTIL", "HOLD-BACK", "PART-HOLD-BACK"):
                    sc[key] = float(_float_attr(attrs, key, where) or 0.0)
                else:
                    sc[key] = attrs[key]
            pl.server_control = sc
        elif name == "EXT-X-PART-INF":
            attrs = parse_attribute_list(value or "", where=where)
            pl.part_target = _float_attr(attrs, "PART-TARGET", where, required=True)
        elif name == "EXT-X-MAP":
            attrs = parse_attribute_list(value or "", where=where)
            current_map = _quoted(attrs, "URI", where, required=True)
            if pl.map_uri is None:
                pl.map_uri = current_map
            br = _quoted(attrs, "BYTERANGE", where)
            if br is not None:
                _byterange(br, where)
        elif name == "EXT-X-SKIP":
            attrs = parse_attribute_list(value or "", where=where)
            skipped = _int_attr(attrs, "SKIPPED-SEGMENTS", where)
            if skipped is None:
                _fail("skip", f"{where}: SKIPPED-SEGMENTS is required")
            pl.skipped_segments = skipped
        elif name == "EXTINF":
            if extinf is not None:
                _fail("syntax", f"{where}: a second #EXTINF before the segment's URI line")
            raw, comma, title = (value or "").partition(",")
            if not comma:
                _fail("syntax", f"{where}: #EXTINF needs '<duration>,[<title>]', got {line!r}")
            if not _FLOAT.fullmatch(raw):
                _fail("extinf", f"{where}: duration {raw!r} is not a decimal number")
            media_line(lineno)
            extinf = (float(raw), title, lineno)
        elif name == "EXT-X-PROGRAM-DATE-TIME":
            pdt = _pdt(value, lineno)
            pl.program_date_times.append(pdt)
        elif name == "EXT-X-DISCONTINUITY":
            discontinuity = True
        elif name == "EXT-X-GAP":
            gap = True
        elif name == "EXT-X-BYTERANGE":
            seg_range = _byterange(value or "", where)
        elif name == "EXT-X-PART":
            attrs = parse_attribute_list(value or "", where=where)
            uri = _quoted(attrs, "URI", where, required=True)
            duration = _float_attr(attrs, "DURATION", where, required=True)
            assert uri is not None and duration is not None
            br = _quoted(attrs, "BYTERANGE", where)
            media_line(lineno)
            parts.append(Part(uri=uri, duration=duration,
                              independent=bool(_yes_no(attrs, "INDEPENDENT", where)),
                              byterange=None if br is None else _byterange(br, where),
                              gap=bool(_yes_no(attrs, "GAP", where)), line=lineno))
        elif name == "EXT-X-PRELOAD-HINT":
            attrs = parse_attribute_list(value or "", where=where)
            kind = _unquoted(attrs, "TYPE", where)
            if kind not in ("PART", "MAP"):
                _fail("preload-hint", f"{where}: TYPE must be PART or MAP, got {kind!r}")
            assert kind is not None
            pl.preload_hints.append(PreloadHint(
                type=kind, uri=_quoted(attrs, "URI", where),
                byterange_start=_int_attr(attrs, "BYTERANGE-START", where),
                byterange_length=_int_attr(attrs, "BYTERANGE-LENGTH", where), line=lineno))
        elif name == "EXT-X-RENDITION-REPORT":
            attrs = parse_attribute_list(value or "", where=where)
            pl.rendition_reports.append(RenditionReport(
                uri=_quoted(attrs, "URI", where), last_msn=_int_attr(attrs, "LAST-MSN", where),
                last_part=_int_attr(attrs, "LAST-PART", where), line=lineno))
        else:
            pl.other_tags.append(line)

    if extinf is not None:
        _fail("syntax", f"line {extinf[2]}: #EXTINF without a URI line after it")
    base = pl.first_msn
    for i, seg in enumerate(segments_raw):
        seg.msn = base + i
    pl.segments = segments_raw
    pl.trailing_parts = parts
    pl.trailing_pdt = pdt
    pl.trailing_discontinuity = discontinuity
    return pl


# --- rules ---------------------------------------------------------------------------------------


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def _check_common(pl: MediaPlaylist, target_duration: int | None) -> None:
    """Rules for every media playlist, live or sealed."""
    if pl.version is None:
        _fail("version", "EXT-X-VERSION is missing")
    assert pl.version is not None
    if pl.skipped_segments is not None and pl.version < 9:
        _fail("version", f"EXT-X-SKIP (a delta update) needs EXT-X-VERSION >= 9, "
                         f"found EXT-X-VERSION:{pl.version}")
    if pl.map_uri is not None and pl.version < 6:
        _fail("version", f"EXT-X-MAP needs EXT-X-VERSION >= 6, found EXT-X-VERSION:{pl.version}")
    td = pl.target_duration
    if td is None:
        _fail("targetduration", "EXT-X-TARGETDURATION is missing")
    assert td is not None
    if target_duration is not None and td != target_duration:
        _fail("targetduration", f"EXT-X-TARGETDURATION is {td}, expected {target_duration}")
    for seg in pl.segments:
        if seg.duration <= 0:
            _fail("extinf", f"segment {seg.msn} ({seg.uri}): EXTINF {seg.duration} is not > 0")
        if _round_half_up(seg.duration) > td:
            _fail("extinf-rounded", f"segment {seg.msn} ({seg.uri}): EXTINF {seg.duration} "
                                    f"rounds to more than EXT-X-TARGETDURATION {td}")
        if seg.duration > td:
            _fail("extinf-max", f"segment {seg.msn} ({seg.uri}): EXTINF {seg.duration} > "
                                f"EXT-X-TARGETDURATION {td} (our rule: no rounding allowance)")
    maps = pl.tag_lines.get("EXT-X-MAP")
    if not maps:
        _fail("map", "EXT-X-MAP is missing")
    assert maps is not None
    if pl.first_media_line is not None and maps[0] > pl.first_media_line:
        _fail("map", f"EXT-X-MAP (line {maps[0]}) comes after the first media line "
                     f"({pl.first_media_line})")


def _check_parts(pl: MediaPlaylist, *, audio: bool) -> None:
    every = pl.parts
    if not every:
        return
    pt = pl.part_target
    if pt is None:
        _fail("part-inf", f"EXT-X-PART appears (line {every[0].line}) without "
                          "EXT-X-PART-INF:PART-TARGET")
    assert pt is not None
    groups: list[tuple[str, list[Part]]] = [
        (f"segment {s.msn} ({s.uri})", s.parts) for s in pl.segments if s.parts]
    if pl.trailing_parts:
        groups.append((f"segment {pl.next_msn} (in progress)", pl.trailing_parts))
    for label, parts in groups:
        for k, p in enumerate(parts):
            if p.duration <= 0:
                _fail("part-duration-max", f"{label} part {k} ({p.uri}): DURATION {p.duration}"
                                           " is not > 0")
            if p.duration > pt + PART_DURATION_TOLERANCE:
                _fail("part-duration-max", f"{label} part {k} ({p.uri}, line {p.line}): "
                                           f"DURATION {p.duration} > PART-TARGET {pt}")
            if k < len(parts) - 1 and p.duration < PART_MIN_FRACTION * pt - PART_DURATION_TOLERANCE:
                _fail("part-duration-min", f"{label} part {k} ({p.uri}, line {p.line}): "
                                           f"DURATION {p.duration} < 85% of PART-TARGET {pt} "
                                           f"({PART_MIN_FRACTION * pt:.6f}) and it is not the "
                                           "segment's last part")
            if audio and not p.independent:
                _fail("independent", f"{label} part {k} ({p.uri}, line {p.line}): an audio part "
                                     "without INDEPENDENT=YES")
    for seg in pl.segments:
        if seg.parts:
            total = sum(p.duration for p in seg.parts)
            if abs(total - seg.duration) > PARTS_SUM_TOLERANCE:
                _fail("parts-sum", f"segment {seg.msn} ({seg.uri}): its {len(seg.parts)} parts "
                                   f"sum to {total:.6f} s, EXTINF is {seg.duration}")
    if pl.trailing_parts and pl.target_duration is not None:
        total = sum(p.duration for p in pl.trailing_parts)
        if total > pl.target_duration + PARTS_SUM_TOLERANCE:
            _fail("parts-sum", f"segment {pl.next_msn} (in progress): its parts already sum to "
                               f"{total:.6f} s > EXT-X-TARGETDURATION {pl.target_duration}")


def _check_parts_window(pl: MediaPlaylist) -> None:
    """RFC 8216bis 4.4.4.9: parts may be removed once older than 3 target durations from the
    end of the playlist; so every segment that ends inside that window lists its parts."""
    if not pl.segments or pl.target_duration is None:
        return
    end = pl.listed_duration
    window_start = end - PARTS_WINDOW_TARGETS * pl.target_duration
    t = 0.0
    with_parts_seen = False
    for seg in pl.segments:
        t += seg.duration
        if seg.parts:
            with_parts_seen = True
        elif with_parts_seen:
            _fail("parts-recent", f"segment {seg.msn} ({seg.uri}) lists no parts but an older "
                                  "segment does (parts are removed oldest first)")
        elif t > window_start + PARTS_SUM_TOLERANCE:
            _fail("parts-recent", f"segment {seg.msn} ({seg.uri}) ends {end - t:.3f} s before "
                                  f"the end of the playlist, within {PARTS_WINDOW_TARGETS} target "
                                  f"durations ({PARTS_WINDOW_TARGETS * pl.target_duration} s), "
                                  "but lists no EXT-X-PART")


def _check_server_control(pl: MediaPlaylist) -> None:
    sc = pl.server_control
    if "EXT-X-SERVER-CONTROL" not in pl.tag_lines:
        _fail("server-control", "EXT-X-SERVER-CONTROL is missing")
    if sc.get("CAN-BLOCK-RELOAD") is not True:
        _fail("server-control", "EXT-X-SERVER-CONTROL lacks CAN-BLOCK-RELOAD=YES")
    td = pl.target_duration or 0
    if pl.part_target is not None:
        phb = sc.get("PART-HOLD-BACK")
        if not isinstance(phb, float):
            _fail("server-control", "EXT-X-SERVER-CONTROL lacks PART-HOLD-BACK (required with "
                                    "EXT-X-PART-INF)")
        assert isinstance(phb, float)
        if phb < 3 * pl.part_target:
            _fail("server-control", f"PART-HOLD-BACK {phb} < 3 x PART-TARGET {pl.part_target} "
                                    f"= {3 * pl.part_target:.6f}")
    hb = sc.get("HOLD-BACK")
    if isinstance(hb, float) and hb < 3 * td:
        _fail("server-control", f"HOLD-BACK {hb} < 3 x EXT-X-TARGETDURATION {td} = {3 * td}")
    skip = sc.get("CAN-SKIP-UNTIL")
    if isinstance(skip, float) and skip < 6 * td:
        _fail("server-control", f"CAN-SKIP-UNTIL {skip} < 6 x EXT-X-TARGETDURATION {td} "
                                f"= {6 * td}")


def _check_preload_hints(pl: MediaPlaylist) -> None:
    hints = [h for h in pl.preload_hints if h.type == "PART"]
    if pl.ended:
        if pl.preload_hints:
            _fail("preload-hint", f"EXT-X-PRELOAD-HINT (line {pl.preload_hints[0].line}) in a "
                                  "playlist with EXT-X-ENDLIST")
        return
    if not hints:
        _fail("preload-hint", "no EXT-X-PRELOAD-HINT:TYPE=PART in a live playlist")
    for kind in ("PART", "MAP"):
        of_kind = [h for h in pl.preload_hints if h.type == kind]
        if len(of_kind) > 1:
            _fail("preload-hint", f"{len(of_kind)} EXT-X-PRELOAD-HINT:TYPE={kind} tags "
                                  f"(lines {[h.line for h in of_kind]}); at most one")
    listed = {p.uri for p in pl.parts} | {s.uri for s in pl.segments}
    for h in pl.preload_hints:
        if not h.uri:
            _fail("preload-hint", f"EXT-X-PRELOAD-HINT on line {h.line} has no URI")
        if h.type == "PART" and h.uri in listed:
            _fail("preload-hint", f"EXT-X-PRELOAD-HINT URI {h.uri!r} (line {h.line}) is already "
                                  "listed as a part or segment")


def _check_pdt(pl: MediaPlaylist) -> None:
    first_pdt = pl.segments[0].pdt if pl.segments else pl.trailing_pdt
    if first_pdt is None and (pl.segments or pl.trailing_parts):
        where = ("the first segment after EXT-X-SKIP" if pl.skipped_segments is not None
                 else "the first segment")
        _fail("pdt", f"no EXT-X-PROGRAM-DATE-TIME for {where} (msn {pl.first_msn})")
    anchor: tuple[datetime, float] | None = None  # (pdt, media time at it)
    t = 0.0
    entries: list[tuple[str, datetime | None, bool, float]] = [
        (f"segment {s.msn} ({s.uri})", s.pdt, s.discontinuity, s.duration) for s in pl.segments]
    entries.append((f"segment {pl.next_msn} (in progress)", pl.trailing_pdt,
                    pl.trailing_discontinuity, 0.0))
    for label, pdt, discontinuity, duration in entries:
        if discontinuity:
            anchor = None
        if pdt is not None:
            if anchor is not None:
                expected = (anchor[0].timestamp() + (t - anchor[1]))
                off = pdt.timestamp() - expected
                if abs(off) > PDT_TOLERANCE:
                    _fail("pdt", f"{label}: EXT-X-PROGRAM-DATE-TIME {pdt.isoformat()} is "
                                 f"{off * 1000:+.1f} ms off the earlier PDT plus the EXTINF "
                                 "durations between them")
            anchor = (pdt, t)
        t += duration


def _check_skip(pl: MediaPlaylist) -> None:
    if pl.skipped_segments is None:
        return
    line = pl.tag_lines["EXT-X-SKIP"][0]
    until = pl.server_control.get("CAN-SKIP-UNTIL")
    if not isinstance(until, float):
        _fail("skip", f"EXT-X-SKIP (line {line}) but EXT-X-SERVER-CONTROL advertises no "
                      "CAN-SKIP-UNTIL")
    assert isinstance(until, float)
    if pl.first_media_line is not None and line > pl.first_media_line:
        _fail("skip", f"EXT-X-SKIP (line {line}) comes after the first media line "
                      f"({pl.first_media_line})")
    # The Skip Boundary lies CAN-SKIP-UNTIL seconds before the end of the playlist; every
    # skipped segment must lie before it, i.e. what stays listed covers at least CAN-SKIP-UNTIL.
    kept = pl.listed_duration
    if kept < until - PARTS_SUM_TOLERANCE:
        _fail("skip", f"EXT-X-SKIP:SKIPPED-SEGMENTS={pl.skipped_segments} skips past the Skip "
                      f"Boundary: only {kept:.3f} s stay listed, CAN-SKIP-UNTIL is {until}")


def _check_reload(pl: MediaPlaylist, prev: MediaPlaylist) -> None:
    """The same client's previous playlist and this one: an EVENT playlist only grows."""
    if pl.target_duration != prev.target_duration:
        _fail("reload", f"EXT-X-TARGETDURATION changed {prev.target_duration} -> "
                        f"{pl.target_duration}")
    if pl.part_target != prev.part_target:
        _fail("reload", f"PART-TARGET changed {prev.part_target} -> {pl.part_target}")
    if pl.playlist_type != prev.playlist_type and not (
            prev.playlist_type == "EVENT" and pl.playlist_type == "VOD" and pl.ended):
        _fail("reload", f"EXT-X-PLAYLIST-TYPE changed {prev.playlist_type} -> "
                        f"{pl.playlist_type}")
    if pl.media_sequence != prev.media_sequence:
        _fail("reload", f"EXT-X-MEDIA-SEQUENCE changed {prev.media_sequence} -> "
                        f"{pl.media_sequence} (an EVENT playlist only appends)")
    if prev.ended and not pl.ended:
        _fail("reload", "EXT-X-ENDLIST went away")
    if pl.progress < prev.progress:
        _fail("reload", f"went backwards: last msn/part {prev.last_msn}/{prev.last_part} -> "
                        f"{pl.last_msn}/{pl.last_part}")
    for old in prev.segments:
        if old.msn < pl.first_msn:
            continue  # skipped by a delta update (first_msn includes SKIPPED-SEGMENTS)
        new = pl.segment(old.msn)
        if new is None:
            _fail("reload", f"segment {old.msn} ({old.uri}) is gone")
        assert new is not None
        if new.uri != old.uri or abs(new.duration - old.duration) > PART_DURATION_TOLERANCE:
            _fail("reload", f"segment {old.msn} changed: {old.uri} {old.duration} -> "
                            f"{new.uri} {new.duration}")
        if old.pdt and new.pdt and abs((new.pdt - old.pdt).total_seconds()) > PDT_TOLERANCE:
            _fail("reload", f"segment {old.msn}: PROGRAM-DATE-TIME changed {old.pdt} -> "
                            f"{new.pdt}")
        if new.parts:
            _same_parts(f"segment {old.msn}", old.parts, new.parts, complete=True)
    if prev.trailing_parts:
        msn = prev.next_msn
        done = pl.segment(msn)
        if done is not None:
            if done.parts:
                _same_parts(f"segment {msn}", prev.trailing_parts, done.parts, complete=False)
        elif pl.next_msn == msn:
            _same_parts(f"segment {msn} (in progress)", prev.trailing_parts, pl.trailing_parts,
                        complete=False)


def _same_parts(label: str, old: list[Part], new: list[Part], *, complete: bool) -> None:
    if (complete and len(new) != len(old)) or len(new) < len(old):
        _fail("reload", f"{label}: had {len(old)} parts, now {len(new)}")
    for k, (a, b) in enumerate(zip(old, new, strict=False)):
        if a.uri != b.uri or abs(a.duration - b.duration) > PART_DURATION_TOLERANCE:
            _fail("reload", f"{label} part {k} changed: {a.uri} {a.duration} -> "
                            f"{b.uri} {b.duration}")


def check_live_media(text: str, *, target_duration: int | None = None,
                     previous: MediaPlaylist | None = None, audio: bool = False) -> MediaPlaylist:
    """Assert `text` is a good Low-Latency HLS live (EVENT) media playlist; return it parsed.

    `target_duration`: the EXT-X-TARGETDURATION it must carry. `previous`: the last full
    playlist the same client saw, for the reload rules. `audio`: every part must then be
    INDEPENDENT=YES."""
    pl = parse_media(text)
    _check_common(pl, target_duration)
    if pl.media_sequence is None:
        _fail("media-sequence", "EXT-X-MEDIA-SEQUENCE is missing (our rule: say it, even 0)")
    if not pl.ended and pl.playlist_type != "EVENT":
        _fail("playlist-type", f"a live playlist (no EXT-X-ENDLIST) must be "
                               f"EXT-X-PLAYLIST-TYPE:EVENT, found {pl.playlist_type}")
    if pl.ended and pl.playlist_type not in ("EVENT", "VOD"):
        _fail("playlist-type", f"EXT-X-PLAYLIST-TYPE is {pl.playlist_type}, want EVENT")
    if pl.start_offset is None:
        _fail("start", "EXT-X-START:TIME-OFFSET=0 is missing")
    if pl.start_offset != 0:
        _fail("start", f"EXT-X-START:TIME-OFFSET is {pl.start_offset}, want 0")
    _check_parts(pl, audio=audio)
    _check_parts_window(pl)
    _check_server_control(pl)
    _check_preload_hints(pl)
    if pl.ended and pl.trailing_parts:
        _fail("endlist", f"EXT-X-ENDLIST with {len(pl.trailing_parts)} parts after the last "
                         "segment: the final segment was never completed")
    _check_pdt(pl)
    if not pl.independent_segments:
        firsts = [(f"segment {s.msn}", s.parts[0]) for s in pl.segments if s.parts]
        if pl.trailing_parts:
            firsts.append((f"segment {pl.next_msn}", pl.trailing_parts[0]))
        if not firsts:
            _fail("independent", "neither EXT-X-INDEPENDENT-SEGMENTS nor INDEPENDENT=YES parts")
        for label, p in firsts:
            if not p.independent:
                _fail("independent", f"no EXT-X-INDEPENDENT-SEGMENTS and the first part of "
                                     f"{label} ({p.uri}) lacks INDEPENDENT=YES")
    for r in pl.rendition_reports:
        missing = [n for n, v in (("URI", r.uri), ("LAST-MSN", r.last_msn),
                                  ("LAST-PART", r.last_part)) if v is None]
        if missing:
            _fail("rendition-report", f"EXT-X-RENDITION-REPORT on line {r.line} lacks "
                                      f"{', '.join(missing)}")
    _check_skip(pl)
    if previous is not None:
        _check_reload(pl, previous)
    return pl


def check_vod_media(text: str, target_duration: int | None = None) -> MediaPlaylist:
    """Assert `text` is a good sealed (VOD) media playlist; return it parsed."""
    pl = parse_media(text)
    _check_common(pl, target_duration)
    if pl.playlist_type != "VOD":
        _fail("playlist-type", f"a sealed playlist must be EXT-X-PLAYLIST-TYPE:VOD, found "
                               f"{pl.playlist_type}")
    if not pl.ended:
        _fail("endlist", "EXT-X-ENDLIST is missing")
    if pl.preload_hints:
        _fail("preload-hint", f"EXT-X-PRELOAD-HINT (line {pl.preload_hints[0].line}) in a "
                              "sealed playlist")
    if pl.skipped_segments is not None:
        _fail("skip", "EXT-X-SKIP in a sealed playlist")
    if pl.trailing_parts:
        _fail("vod-tail", f"{len(pl.trailing_parts)} parts after the last segment of a sealed "
                          "playlist")
    if not pl.segments:
        _fail("vod-tail", "a sealed playlist without segments")
    _check_parts(pl, audio=False)
    td = pl.target_duration or 0
    last = pl.segments[-1]
    if len(pl.segments) > 1 and last.duration < VOD_MIN_TAIL_FRACTION * td:
        _fail("vod-tail", f"the last segment ({last.uri}) lasts {last.duration} s < "
                          f"{VOD_MIN_TAIL_FRACTION} x EXT-X-TARGETDURATION {td} (our rule: no "
                          "near-empty trailing segment)")
    return pl


# --- multivariant playlists -------------------------------------------------------------------


@dataclass
class Variant:
    """An EXT-X-STREAM-INF and the URI line after it."""

    uri: str
    bandwidth: int
    average_bandwidth: int | None = None
    codecs: str | None = None
    resolution: str | None = None
    frame_rate: float | None = None
    audio: str | None = None  # GROUP-ID of the audio renditions
    attributes: Attributes | None = None


@dataclass
class Rendition:
    """An EXT-X-MEDIA."""

    type: str
    group_id: str
    name: str
    uri: str | None = None
    language: str | None = None
    default: bool = False
    autoselect: bool = False
    channels: str | None = None
    attributes: Attributes | None = None


@dataclass
class MultivariantPlaylist:
    version: int | None = None
    independent_segments: bool = False
    variants: list[Variant] = field(default_factory=list)
    media: list[Rendition] = field(default_factory=list)
    i_frame_uris: list[str] = field(default_factory=list)

    @property
    def media_playlist_uris(self) -> list[str]:
        """Every media playlist it names (variants, then EXT-X-MEDIA with a URI), once each."""
        seen: dict[str, None] = {}
        for uri in [v.uri for v in self.variants] + [m.uri for m in self.media if m.uri]:
            seen.setdefault(uri, None)
        return list(seen)


def parse_multivariant(text: str) -> MultivariantPlaylist:
    """Parse a Multivariant Playlist: variants (EXT-X-STREAM-INF + URI) and EXT-X-MEDIA."""
    lines = _lines(text)
    _check_first_line(lines)
    mv = MultivariantPlaylist()
    pending: tuple[Attributes, int] | None = None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if not line.startswith("#"):
            if pending is None:
                _fail("syntax", f"line {lineno}: URI line {line!r} without EXT-X-STREAM-INF")
            assert pending is not None
            attrs, at = pending
            where = f"line {at} #EXT-X-STREAM-INF"
            bandwidth = _int_attr(attrs, "BANDWIDTH", where)
            if bandwidth is None:
                _fail("variant", f"{where}: BANDWIDTH is required")
            assert bandwidth is not None
            mv.variants.append(Variant(
                uri=line, bandwidth=bandwidth,
                average_bandwidth=_int_attr(attrs, "AVERAGE-BANDWIDTH", where),
                codecs=_quoted(attrs, "CODECS", where), resolution=_unquoted(attrs, "RESOLUTION",
                                                                             where),
                frame_rate=_float_attr(attrs, "FRAME-RATE", where),
                audio=_quoted(attrs, "AUDIO", where), attributes=attrs))
            pending = None
            continue
        if not line.startswith("#EXT"):
            continue
        name, value = _split_tag(line, lineno)
        where = f"line {lineno} #{name}"
        if pending is not None:
            _fail("syntax", f"{where}: EXT-X-STREAM-INF on line {pending[1]} must be followed "
                            "by its URI line")
        if name in ("EXTINF", "EXT-X-TARGETDURATION", "EXT-X-PART", "EXT-X-MEDIA-SEQUENCE"):
            _fail("playlist-kind", f"{where}: a Media Playlist tag in a Multivariant Playlist")
        if name == "EXT-X-VERSION":
            mv.version = _int_value(name, value, lineno, "version")
        elif name == "EXT-X-INDEPENDENT-SEGMENTS":
            mv.independent_segments = True
        elif name == "EXT-X-STREAM-INF":
            pending = (parse_attribute_list(value or "", where=where), lineno)
        elif name == "EXT-X-I-FRAME-STREAM-INF":
            attrs = parse_attribute_list(value or "", where=where)
            uri = _quoted(attrs, "URI", where, required=True)
            assert uri is not None
            mv.i_frame_uris.append(uri)
        elif name == "EXT-X-MEDIA":
            attrs = parse_attribute_list(value or "", where=where)
            kind = _unquoted(attrs, "TYPE", where)
            group = _quoted(attrs, "GROUP-ID", where, required=True)
            label = _quoted(attrs, "NAME", where, required=True)
            if kind not in ("AUDIO", "VIDEO", "SUBTITLES", "CLOSED-CAPTIONS"):
                _fail("media", f"{where}: TYPE {kind!r} is not AUDIO/VIDEO/SUBTITLES/"
                               "CLOSED-CAPTIONS")
            assert kind is not None and group is not None and label is not None
            mv.media.append(Rendition(
                type=kind, group_id=group, name=label, uri=_quoted(attrs, "URI", where),
                language=_quoted(attrs, "LANGUAGE", where),
                default=bool(_yes_no(attrs, "DEFAULT", where)),
                autoselect=bool(_yes_no(attrs, "AUTOSELECT", where)),
                channels=_quoted(attrs, "CHANNELS", where), attributes=attrs))
    if pending is not None:
        _fail("syntax", f"line {pending[1]}: EXT-X-STREAM-INF without a URI line after it")
    return mv
