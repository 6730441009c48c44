"""Preconditions (origin.http.conditional) against RFC 9110 §13."""

from __future__ import annotations

import pytest

from origin.http.conditional import (
    Outcome,
    evaluate,
    format_http_date,
    if_range_allows,
    parse_etags,
    parse_http_date,
)

ETAG = '"abc-1"'
LM = 1_700_000_000
LM_DATE = format_http_date(LM)
EARLIER = format_http_date(LM - 60)
LATER = format_http_date(LM + 60)


def test_dates_round_trip() -> None:
    assert parse_http_date(LM_DATE) == LM
    assert LM_DATE.endswith("GMT")
    # RFC 9110 §5.6.7: recipients accept the obsolete formats too.
    assert parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == 784111777
    assert parse_http_date("Sun Nov  6 08:49:37 1994") == 784111777
    assert parse_http_date("yesterday") is None
    assert parse_http_date("") is None


def test_parse_etags() -> None:
    assert parse_etags('"a", W/"b" ,"c"') == [(False, '"a"'), (True, '"b"'), (False, '"c"')]
    assert parse_etags('"a" "b"') is None
    assert parse_etags("abc") is None


@pytest.mark.parametrize(
    ("inm", "expected"),
    [
        (ETAG, Outcome.NOT_MODIFIED),
        ("*", Outcome.NOT_MODIFIED),
        (f'"zzz", {ETAG}', Outcome.NOT_MODIFIED),
        (f"W/{ETAG}", Outcome.NOT_MODIFIED),  # If-None-Match uses weak comparison
        ('"zzz"', Outcome.PROCEED),
        ("garbage", Outcome.PROCEED),  # malformed: treated as absent
    ],
)
def test_if_none_match(inm: str, expected: Outcome) -> None:
    assert evaluate("GET", ETAG, LM, if_none_match=inm) is expected
    assert evaluate("HEAD", ETAG, LM, if_none_match=inm) is expected


@pytest.mark.parametrize(
    ("ims", "expected"),
    [(LM_DATE, Outcome.NOT_MODIFIED), (LATER, Outcome.NOT_MODIFIED),
     (EARLIER, Outcome.PROCEED), ("not a date", Outcome.PROCEED)],
)
def test_if_modified_since(ims: str, expected: Outcome) -> None:
    assert evaluate("GET", ETAG, LM, if_modified_since=ims) is expected


def test_if_none_match_wins_over_if_modified_since() -> None:
    # RFC 9110 §13.2.2 step 4 is skipped when If-None-Match is present.
    assert evaluate("GET", ETAG, LM, if_none_match='"other"',
                    if_modified_since=LATER) is Outcome.PROCEED
    assert evaluate("GET", ETAG, LM, if_none_match=ETAG,
                    if_modified_since=EARLIER) is Outcome.NOT_MODIFIED


def test_if_match_and_if_unmodified_since() -> None:
    assert evaluate("GET", ETAG, LM, if_match=ETAG) is Outcome.PROCEED
    assert evaluate("GET", ETAG, LM, if_match="*") is Outcome.PROCEED
    assert evaluate("GET", ETAG, LM, if_match='"x"') is Outcome.PRECONDITION_FAILED
    assert evaluate("GET", ETAG, LM, if_match=f"W/{ETAG}") is Outcome.PRECONDITION_FAILED
    assert evaluate("GET", ETAG, LM, if_unmodified_since=EARLIER) is (
        Outcome.PRECONDITION_FAILED)
    assert evaluate("GET", ETAG, LM, if_unmodified_since=LATER) is Outcome.PROCEED
    # If-Unmodified-Since is ignored when If-Match is present.
    assert evaluate("GET", ETAG, LM, if_match=ETAG,
                    if_unmodified_since=EARLIER) is Outcome.PROCEED


def test_no_conditions() -> None:
    assert evaluate("GET", ETAG, LM) is Outcome.PROCEED


@pytest.mark.parametrize(
    ("value", "allowed"),
    [
        (None, True),
        (ETAG, True),
        ('"other"', False),
        (f"W/{ETAG}", False),  # If-Range needs a strong match
        (LM_DATE, True),
        (EARLIER, False),
        (LATER, False),  # only an exact date match counts
        ("junk", False),
    ],
)
def test_if_range(value: str | None, allowed: bool) -> None:
    assert if_range_allows(value, ETAG, LM) is allowed
