"""Access log lines (combined, and the shipped edge's sori_edge format) -> Hit."""

from __future__ import annotations

import pytest

from analytics.combined_log import parse

T = "[01/Nov/2026:10:00:00 +0000]"
TS = 1793527200.0


def test_combined_segment_with_token_and_cmcd() -> None:
    line = (f'81.2.69.142 - - {T} "GET /assets/ep1/~exp.sig/v/abc/low/seg_00002.m4s?'
            'CMCD=br%3D64%2Csid%3D%22s%22 HTTP/1.1" 200 51234 "https://x/" '
            '"Overcast/3.0 (+http://overcast.fm/; iOS podcast app)"')
    h = parse(line)
    assert h is not None
    assert (h.ts, h.asset, h.rel, h.method, h.status, h.nbytes, h.range, h.ip) == \
        (TS, "ep1", "v/abc/low/seg_00002.m4s", "GET", 200, 51234, None, "81.2.69.142")
    assert h.ua.startswith("Overcast/3.0") and h.cmcd == 'br=64,sid="s"'
    assert h.source == "import" and parse(line, source="edge")  # type: ignore[union-attr]


def test_download_206_and_edge_format() -> None:
    h = parse(f'2003:e0::1 - - {T} "GET /v1/assets/ep1/download?token=abc HTTP/2.0" 206 5000 '
              '"-" "AppleCoreMedia/1.0.0.20K71 (iPhone; U; CPU OS 16_1 like Mac OS X)"')
    assert h is not None and (h.rel, h.status, h.nbytes, h.range) == ("download", 206, 5000, None)
    e = parse('::1 [2026-11-01T10:00:00+00:00] "GET /assets/ep1/~redacted/master.m3u8 HTTP/1.1" '
              '200 300 cache=HIT upstream=- rt=0.001')
    assert e is not None and (e.ts, e.rel, e.ua) == (TS, "master.m3u8", "")
    dash = parse(f'1.2.3.4 - - {T} "HEAD /assets/ep1/manifest.mpd HTTP/1.1" 200 - "-" "-"')
    assert dash is not None and (dash.method, dash.nbytes, dash.ua) == ("HEAD", 0, "")


def test_escaped_user_agent() -> None:
    h = parse(f'1.2.3.4 - - {T} "GET /assets/e/master.m3u8 HTTP/1.1" 200 1 "-" '
              '"A \\"quoted\\" \\x22ua\\x22"')
    assert h is not None and h.ua == 'A "quoted" "ua"'


@pytest.mark.parametrize("line", [
    "",
    "garbage",
    f'1.2.3.4 - - {T} "GET / HTTP/1.1" 200 1 "-" "ua"',
    f'1.2.3.4 - - {T} "GET /v1/assets HTTP/1.1" 200 1 "-" "ua"',
    f'1.2.3.4 - - {T} "GET /assets/../etc/passwd HTTP/1.1" 200 1 "-" "ua"',
    f'1.2.3.4 - - {T} "GET /assets/ep/v/../../x HTTP/1.1" 200 1 "-" "ua"',
    f'1.2.3.4 - - {T} "GET /assets/bad%20id/master.m3u8 HTTP/1.1" 200 1 "-" "ua"',
    '1.2.3.4 - - [not a time] "GET /assets/ep/master.m3u8 HTTP/1.1" 200 1 "-" "ua"',
    f'1.2.3.4 - - {T} "GET /assets/ep/master.m3u8 HTTP/1.1" abc 1 "-" "ua"',
    f'1.2.3.4 - - {T} "GET /assets/ep/' + "x" * 20000 + ' HTTP/1.1" 200 1 "-" "ua"',
])
def test_malformed_or_not_media(line: str) -> None:
    assert parse(line) is None
