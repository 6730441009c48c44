"""Content types by file extension, shared by the stores and the origin.

One table so that an object gets the same type whichever store holds it and
whichever layer answers for it (CONTRACT.md section 4, "Content types").
"""

from __future__ import annotations

import posixpath
from urllib.parse import quote

DEFAULT_CONTENT_TYPE = "application/octet-stream"

# RFC 8216 section 4 names application/vnd.apple.mpegurl for playlists;
# ISO/IEC 23009-1 Annex C registers application/dash+xml for MPDs;
# RFC 6381 / RFC 4337 give video/mp4 and audio/mp4; CMAF media segments are
# video/iso.segment (IANA registration by ISO/IEC JTC 1/SC 29).
CONTENT_TYPES: dict[str, str] = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".m4s": "video/iso.segment",
    ".m4a": "audio/mp4",
    ".mp4": "video/mp4",
    ".vtt": "text/vtt",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",  # a transcript's plain text (issue 14)
}


def content_type_for(key: str) -> str:
    """The content type for a key or file name, from its extension (case-insensitive)."""
    ext = posixpath.splitext(key)[1].lower()
    return CONTENT_TYPES.get(ext, DEFAULT_CONTENT_TYPE)


def attachment_disposition(filename: str) -> str:
    """A Content-Disposition value that makes a browser save the body as `filename`.

    RFC 6266 section 4.1: `filename` carries an ASCII fallback (quotes and
    backslashes replaced, since RFC 7230 quoted-string escaping is not honoured by
    every user agent), and `filename*` (RFC 8187) the exact UTF-8 name when it is
    not plain ASCII.
    """
    fallback = "".join(
        c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else "_" for c in filename
    ) or "download"
    value = f'attachment; filename="{fallback}"'
    if fallback != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value
