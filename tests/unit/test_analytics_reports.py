"""Report periods from query values (the 400 messages of the analytics endpoints)."""

from __future__ import annotations

import datetime as dt

import pytest

from analytics.reports import MAX_DAYS, parse_period

NOW = dt.datetime(2026, 11, 20, 23, 59, tzinfo=dt.UTC).timestamp()


def test_defaults_and_values() -> None:
    assert parse_period(None, None, now=NOW) == (dt.date(2026, 10, 22), dt.date(2026, 11, 20))
    assert parse_period("2026-11-01", None, now=NOW) == (dt.date(2026, 11, 1),
                                                         dt.date(2026, 11, 20))
    assert parse_period(None, "2026-01-31", now=NOW, default_days=1) == \
        (dt.date(2026, 1, 31), dt.date(2026, 1, 31))
    assert parse_period("2026-11-05", "2026-11-05", now=NOW) == (dt.date(2026, 11, 5),) * 2


@pytest.mark.parametrize(("first", "last", "message"), [
    ("yesterday", None, "from: expected a date as YYYY-MM-DD"),
    ("2026-11-01", "2026-13-01", "to: expected a date"),
    ("20261101", None, "from: expected a date"),
    ("2026-11-02", "2026-11-01", "from: must not be after to"),
    ("1990-01-01", "2026-11-01", f"at most {MAX_DAYS} days"),
])
def test_bad_periods(first: str, last: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_period(first, last, now=NOW)
