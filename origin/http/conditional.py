"""Conditional requests (RFC 9110 §13), as pure functions over header values.

The origin evaluates preconditions in the order RFC 9110 §13.2.2 prescribes:
If-Match, then If-Unmodified-Since (only without If-Match), then If-None-Match,
then If-Modified-Since (only without If-None-Match, and only for GET/HEAD),
and last If-Range, which decides whether a Range header is honoured at all.
"""

from __future__ import annotations

import calendar
import email.utils
import enum
import re

# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE  (RFC 9110 §8.8.3)
_ETAG_ITEM = re.compile(r'\s*(W/)?("[^"]*")\s*(?:,|$)')


class Outcome(enum.Enum):
    PROCEED = "proceed"  # evaluate Range and send the representation
    NOT_MODIFIED = "not_modified"  # 304
    PRECONDITION_FAILED = "precondition_failed"  # 412


def parse_http_date(value: str | None) -> int | None:
    """Seconds since the epoch of an HTTP-date (RFC 9110 §5.6.7), or None when invalid."""
    if not value:
        return None
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    try:
        if parsed[9] is None:
            return int(calendar.timegm(parsed[:9]))
        return int(email.utils.mktime_tz(parsed))
    except (OverflowError, ValueError):
        return None


def format_http_date(timestamp: float) -> str:
    return email.utils.formatdate(int(timestamp), usegmt=True)


def parse_etags(value: str) -> list[tuple[bool, str]] | None:
    """A list of (weak, quoted opaque-tag) from an If-Match/If-None-Match value.

    Returns None when the value does not parse, in which case the condition is
    treated as absent (a malformed validator must not produce a 304 or a 412
    by accident; RFC 9110 §13.1 lets the server ignore it).
    """
    tags: list[tuple[bool, str]] = []
    pos = 0
    value = value.strip()
    while pos < len(value):
        m = _ETAG_ITEM.match(value, pos)
        if m is None:
            return None
        tags.append((m.group(1) is not None, m.group(2)))
        pos = m.end()
    return tags


def strong_match(value: str, etag: str) -> bool:
    """RFC 9110 §8.8.3.2 strong comparison of any tag in `value` with our strong `etag`."""
    if value.strip() == "*":
        return True
    tags = parse_etags(value)
    return bool(tags) and any(not weak and tag == etag for weak, tag in tags or ())


def weak_match(value: str, etag: str) -> bool:
    """RFC 9110 §8.8.3.2 weak comparison: opaque-tags equal, W/ ignored."""
    if value.strip() == "*":
        return True
    tags = parse_etags(value)
    return bool(tags) and any(tag == etag for _weak, tag in tags or ())


def _usable(value: str | None) -> bool:
    """An If-Match/If-None-Match value that is present and well-formed."""
    if value is None:
        return False
    return value.strip() == "*" or bool(parse_etags(value))


def evaluate(
    method: str,
    etag: str,
    last_modified: int,
    *,
    if_match: str | None = None,
    if_unmodified_since: str | None = None,
    if_none_match: str | None = None,
    if_modified_since: str | None = None,
) -> Outcome:
    """Evaluate the preconditions of a request for an existing representation.

    `etag` is our strong validator in quoted form; `last_modified` whole seconds.
    """
    # Step 1: If-Match (strong comparison, RFC 9110 §13.1.1).
    if _usable(if_match):
        assert if_match is not None
        if not strong_match(if_match, etag):
            return Outcome.PRECONDITION_FAILED
    # Step 2: If-Unmodified-Since, only when If-Match is absent (§13.1.4).
    elif if_unmodified_since is not None:
        since = parse_http_date(if_unmodified_since)
        if since is not None and last_modified > since:
            return Outcome.PRECONDITION_FAILED
    # Step 3: If-None-Match (weak comparison, §13.1.2); for GET/HEAD a match is a 304.
    if _usable(if_none_match):
        assert if_none_match is not None
        if weak_match(if_none_match, etag):
            if method in ("GET", "HEAD"):
                return Outcome.NOT_MODIFIED
            return Outcome.PRECONDITION_FAILED
    # Step 4: If-Modified-Since, only for GET/HEAD and only without If-None-Match (§13.1.3).
    elif if_modified_since is not None and method in ("GET", "HEAD"):
        since = parse_http_date(if_modified_since)
        if since is not None and last_modified <= since:
            return Outcome.NOT_MODIFIED
    return Outcome.PROCEED


def if_range_allows(value: str | None, etag: str, last_modified: int) -> bool:
    """Whether a Range header may be honoured given the If-Range value (RFC 9110 §13.1.5).

    An entity-tag must match strongly; a date must equal Last-Modified exactly
    (our Last-Modified is a strong validator: objects are written once, and an
    entry manifest is replaced as a whole). Anything else means "send it all".
    """
    if value is None:
        return True
    value = value.strip()
    if value.startswith(('"', "W/")):
        # A weak tag never matches: If-Range requires strong comparison.
        return not value.startswith("W/") and value == etag
    date = parse_http_date(value)
    return date is not None and date == last_modified
