"""Common Media Client Data: v1 request data (CTA-5004) and v2 event reports (CTA-5004-A).

Both are a comma-separated list of `key[=value]` (the Structured Field dictionary
syntax): a bare key is boolean true (`bs`, `su`), `?0`/`?1` an explicit boolean, strings
are quoted with `\\` escapes (`sid="…"`), tokens are bare words (`ot=v`, `sta=p`),
numbers integers or decimals, and v2 list keys (`br`, `bl`, `mtp`, ...) may be inner
lists `(3200 1500)`: one value per media type, the first is kept. v1 arrives as the
`CMCD=` query value (URL-decoded) or as the four headers CMCD-Request, CMCD-Object,
CMCD-Status and CMCD-Session, which carry the same keys and are joined with ",".

Strict and safe: the text comes from any client. Unknown keys, ill-typed values and
token values outside the specification are ignored one by one; an input too long, or
with nothing valid in it, gives None. Nothing here raises on bad input.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping

Value = int | float | str | bool
MAX_TEXT = 4096  # characters of one CMCD payload (the four headers together included)
MAX_KEYS = 64
MAX_STRING = 128  # CTA-5004: cid at most 128 characters, sid 64
MAX_INT = 2**53 - 1  # what a JavaScript number holds exactly (ts is milliseconds)
MAX_REPORTS = 100  # lines of one POSTed v2 report body

LEGACY_STATE_EVENTS = ("s", "p", "a", "k", "r", "f")  # `e=p` meaning `e=ps,sta=p` (a draft)
HEADERS = ("CMCD-Request", "CMCD-Object", "CMCD-Status", "CMCD-Session")

INTEGER_KEYS = frozenset({"br", "bl", "d", "dl", "mtp", "rtp", "tb", "v", "ts", "pt", "rc",
                          "sn", "ttfb", "ttlb", "msd", "ltc", "dfa"})
DECIMAL_KEYS = frozenset({"pr"})
BOOLEAN_KEYS = frozenset({"bs", "su", "bg", "nr"})
STRING_KEYS = frozenset({"cid", "sid", "nor", "nrr", "cdn", "cen", "url"})
TOKENS: dict[str, frozenset[str]] = {
    "ot": frozenset({"m", "a", "v", "av", "i", "c", "tt", "k", "o"}),  # object type
    "sf": frozenset({"d", "h", "s", "o"}),  # streaming format
    "st": frozenset({"v", "l", "ll"}),  # stream type
    # v2 player state: starting, playing, seeking, rebuffering, paused, waiting (for the
    # user or another event), ended, fatal error, quit, preloading
    "sta": frozenset({"s", "p", "k", "r", "a", "w", "e", "f", "q", "d"}),
    # v2 event type: play state, error, time interval, bitrate change, content id, ...;
    # and the state letters an earlier draft (dash.js 5.0) sent as the event itself
    "e": frozenset({"ps", "e", "t", "bc", "c", "b", "m", "um", "pe", "pc", "rr", "as", "ae",
                    "abs", "abe", "sk", "ce"}) | frozenset(LEGACY_STATE_EVENTS),
}

_KEY = re.compile(r"[a-z][a-z0-9_.-]{0,31}")
_INT = re.compile(r"-?[0-9]{1,16}")
_DEC = re.compile(r"-?[0-9]{1,12}\.[0-9]{1,3}")
_TOKEN = re.compile(r"[A-Za-z*][A-Za-z0-9:/!#$%&'*+.^_`|~-]{0,63}")


def _members(text: str) -> list[str] | None:
    """Split at commas outside quoted strings; None when a quote is left open."""
    out: list[str] = []
    start, quoted, escaped = 0, False, False
    for i, ch in enumerate(text):
        if quoted:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == ",":
            out.append(text[start:i])
            start = i + 1
    if quoted:
        return None
    out.append(text[start:])
    return out


def _string(raw: str) -> str | None:
    if len(raw) < 2 or raw[0] != '"' or raw[-1] != '"':
        return None
    body, chars, i = raw[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            if i + 1 >= len(body) or body[i + 1] not in '"\\':
                return None
            ch = body[i + 1]
            i += 1
        elif ch == '"' or not (" " <= ch <= "~"):
            return None
        chars.append(ch)
        i += 1
    s = "".join(chars)
    return s if len(s) <= MAX_STRING else None


def _number(raw: str, decimal: bool) -> int | float | None:
    if raw.startswith("(") and raw.endswith(")"):  # v2 inner list: the first item
        items = raw[1:-1].split()
        if not items:
            return None
        raw = items[0].split(";", 1)[0]  # a parameter on an item (`;v`) is not kept
    if _INT.fullmatch(raw):
        n = int(raw)
        return n if 0 <= n <= MAX_INT else None
    if decimal and _DEC.fullmatch(raw):
        f = float(raw)
        return f if f >= 0 else None
    return None


def _value(key: str, raw: str | None) -> Value | None:
    if key in BOOLEAN_KEYS:
        if raw is None or raw == "?1":
            return True
        return False if raw == "?0" else None
    if raw is None:
        return None
    if key in INTEGER_KEYS or key in DECIMAL_KEYS:
        return _number(raw, key in DECIMAL_KEYS)
    if key in STRING_KEYS:
        return _string(raw)
    allowed = TOKENS.get(key)
    if allowed is not None and _TOKEN.fullmatch(raw) and raw in allowed:
        return raw
    return None


def parse(text: str | None) -> dict[str, Value] | None:
    """The valid keys of one CMCD payload (v1 or v2), or None."""
    if not text or not isinstance(text, str) or len(text) > MAX_TEXT:
        return None
    if "=" not in text and "%" in text:  # still URL-encoded (a raw query value)
        text = urllib.parse.unquote(text)
    members = _members(text.strip())
    if members is None or len(members) > MAX_KEYS:
        return None
    out: dict[str, Value] = {}
    for member in members:
        member = member.strip()
        if not member:
            continue
        key, sep, raw = member.partition("=")
        if not _KEY.fullmatch(key):
            continue
        value = _value(key, raw if sep else None)
        if value is not None and key not in out:
            out[key] = value
    return out or None


def state_of(data: dict[str, Value]) -> str | None:
    """The play state a report gives: `sta`, or the draft form that sent it as `e`."""
    sta = data.get("sta")
    if isinstance(sta, str):
        return sta
    e = data.get("e")
    return e if isinstance(e, str) and e in LEGACY_STATE_EVENTS else None


def from_query(query: str) -> str | None:
    """The `CMCD=` value of a raw (URL-encoded) query string, decoded; None without one."""
    if "CMCD=" not in query or len(query) > 4 * MAX_TEXT:
        return None
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if name == "CMCD":
            return value[:MAX_TEXT + 1]
    return None


def from_headers(headers: Mapping[str, str]) -> str | None:
    """The four CMCD headers joined with "," (the form Hit.cmcd takes), or None."""
    parts = [headers[h] for h in HEADERS if headers.get(h)]
    return ",".join(parts)[:MAX_TEXT + 1] if parts else None


def report_lines(body: str) -> list[str]:
    """The non-empty lines of a POSTed v2 report body (one report a line), at most
    MAX_REPORTS."""
    lines = [line.strip() for line in body.splitlines()[:MAX_REPORTS * 2]]
    return [line for line in lines if line][:MAX_REPORTS]
