"""Reading an HTTP/1.1 request head (RFC 9112 §2-§5) in its plain form, for the fast lane.

    head = parse_head(b"GET /assets/a/v/1/high/seg_00001.m4s HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
    head.method, head.target, head.minor, head.fields["host"]

Only the plain, unambiguous form is read: an origin-form target of visible
ASCII, token field names, field values of visible ASCII, spaces and tabs,
CRLF line ends. Anything else (obs-fold, a bare LF or CR, control
characters, absolute-form targets, an HTTP version other than 1.0/1.1) gives
None, and the request goes to aiohttp's full parser, which knows the rest of
the grammar and how to refuse it. So this module never has to decide what is
an error, only what is certainly simple.

Pure: bytes in, a value out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEAD_END = b"\r\n\r\n"
MAX_HEAD = 16 * 1024  # a longer head is left to aiohttp, which enforces its own limits

_REQUEST_LINE = re.compile(rb"([A-Z]{1,16}) (/[\x21-\x7e]*) HTTP/1\.([01])")
# RFC 9110 §5.1 (token) and §5.5 (field-value without obs-text); OWS trimmed by the caller.
_FIELD = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):([\t\x20-\x7e]*)")
_OWS = b" \t"


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    target: str  # origin-form: path and query, as sent (not decoded)
    minor: int  # HTTP/1.<minor>
    fields: dict[str, str]  # lower-cased names; repeated fields joined with ", " (§5.3)

    @property
    def bodyless(self) -> bool:
        """True when the message ends with its head (RFC 9112 §6.3: a request with
        neither Content-Length nor Transfer-Encoding has no content), and the
        connection stays plain HTTP after it (no Upgrade, no CONNECT tunnel)."""
        f = self.fields
        return ("transfer-encoding" not in f and f.get("content-length", "0") == "0"
                and "upgrade" not in f and self.method != "CONNECT")


def parse_head(head: bytes) -> RequestHead | None:
    """The request head `head` (ending with CRLF CRLF), or None when it is not plain."""
    if not head.endswith(HEAD_END) or len(head) > MAX_HEAD:
        return None
    lines = head[:-4].split(b"\r\n")
    m = _REQUEST_LINE.fullmatch(lines[0])
    if m is None:
        return None
    fields: dict[str, str] = {}
    for line in lines[1:]:
        f = _FIELD.fullmatch(line)
        if f is None:
            return None
        name = f.group(1).decode("ascii").lower()
        value = f.group(2).strip(_OWS).decode("ascii")
        if name in fields:
            fields[name] = f"{fields[name]}, {value}"
        else:
            fields[name] = value
    return RequestHead(m.group(1).decode("ascii"), m.group(2).decode("ascii"),
                       int(m.group(3)), fields)
