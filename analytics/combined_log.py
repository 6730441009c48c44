"""An nginx/CDN access log line -> Hit, for `sori analytics import`.

Reads the "combined" format

    1.2.3.4 - - [02/Dec/2026:10:00:00 +0000] "GET /assets/ep1/v/abc/low/seg_00001.m4s?CMCD=... HTTP/1.1" 200 51234 "referer" "User-Agent"

and the shipped edge's `sori_edge` format (ISO time, no user fields, no User-Agent: such
lines count with an empty User-Agent). Media paths are `/assets/{id}/{rel}` (a signed
URL's token segment `~token` right after the id is left out) and `/v1/assets/{id}/download`;
a `CMCD=` query value is kept as the hit's CMCD data. Anything else (other paths, lines
that do not parse) gives None: the caller counts those as skipped.

A log has no Range header: a 206 line is taken as `bytes` sent from an unknown offset,
so a resumed download adds its length of media time to the client's union instead of a
placed span (analytics.spans); a 206 of a segment counts as that segment.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse

from analytics import cmcd
from analytics.events import Hit
from manifests import layout

MAX_LINE = 16384
_LINE = re.compile(
    r'(?P<ip>[0-9A-Fa-f:.]{2,45}) (?:\S+ \S+ )?\[(?P<time>[^\]]{10,40})\] '
    r'"(?P<method>[A-Z]{1,10}) (?P<target>\S{1,8192})(?: HTTP/[0-9.]{1,3})?" '
    r'(?P<status>[0-9]{3}) (?P<bytes>[0-9]{1,15}|-)'
    r'(?: "(?P<referer>(?:[^"\\]|\\.)*)" "(?P<ua>(?:[^"\\]|\\.)*)")?')
_ASSET = re.compile(r"/assets/([^/?#]+)/(?:~[^/?#]*/)?(.+)")
_DOWNLOAD = re.compile(r"/v1/assets/([^/?#]+)/download")


def parse_time(text: str) -> float | None:
    for fmt in ("%d/%b/%Y:%H:%M:%S %z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return dt.datetime.strptime(text, fmt).timestamp()
        except ValueError:
            continue
    return None


def target_of(target: str) -> tuple[str, str, str | None] | None:
    """Request target -> (asset, rel, CMCD data); None when it is no asset object."""
    path, _, query = target.partition("?")
    path = urllib.parse.unquote(path)
    if m := _DOWNLOAD.fullmatch(path):
        asset, rel = m.group(1), "download"
    elif m := _ASSET.fullmatch(path):
        asset, rel = m.group(1), m.group(2)
        if rel.startswith("~") or ".." in rel.split("/") or "//" in rel:
            return None
    else:
        return None
    if not layout.is_valid_asset_id(asset):
        return None
    return asset, rel, cmcd.from_query(query) if query else None


def _unescape(text: str) -> str:
    """nginx writes `"` and bytes outside printable ASCII as \\xHH."""
    if "\\" not in text:
        return text
    return re.sub(r"\\x([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)),
                  text).replace('\\"', '"').replace("\\\\", "\\")


def parse(line: str, *, source: str = "import") -> Hit | None:
    if len(line) > MAX_LINE:
        return None
    m = _LINE.match(line.strip())
    if not m:
        return None
    ts = parse_time(m.group("time"))
    found = target_of(m.group("target"))
    if ts is None or found is None:
        return None
    asset, rel, data = found
    nbytes = 0 if m.group("bytes") == "-" else int(m.group("bytes"))
    ua = _unescape(m.group("ua") or "")
    if ua == "-":
        ua = ""
    return Hit(ts=ts, asset=asset, rel=rel, method=m.group("method"),
               status=int(m.group("status")), nbytes=nbytes, range=None, ip=m.group("ip"),
               ua=ua, cmcd=data, source=source)
