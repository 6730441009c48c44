"""origin.observe.accesslog: each line is one JSON object whatever the request carried, and lines
reach the logger in batches (when full, after FLUSH_AFTER, or on flush())."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from origin.observe import accesslog
from origin.observe.accesslog import AccessLog, format_line

_text = st.text(max_size=60)


@given(_text, _text, st.none() | _text, st.none() | _text, st.none() | _text,
       st.integers(100, 599), st.integers(0, 2**40), st.floats(0, 1e4))
def test_a_line_is_one_json_object(method: str, path: str, rng: str | None, remote: str | None,
                                   ua: str | None, status: int, nbytes: int,
                                   seconds: float) -> None:
    line = format_line(1795330000.123456, method, path, status, nbytes, seconds, rng, "hit",
                       remote, ua)
    assert "\n" not in line and "\r" not in line
    assert line.isascii()
    parsed = json.loads(line)
    assert parsed == {"ts": 1795330000.123, "method": method, "path": path, "status": status,
                      "bytes": nbytes, "ms": pytest.approx(round(seconds * 1000, 2), abs=0.006),
                      "range": rng, "cache": "hit", "remote": remote, "ua": ua}


def _lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [json.loads(line) for r in caplog.records if r.name == "sori.access"
            for line in r.getMessage().splitlines()]


async def test_lines_are_batched_and_flushed_after_a_delay(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accesslog, "FLUSH_AFTER", 0.05)
    caplog.set_level(logging.INFO, logger="sori.access")
    log = AccessLog(True)
    for i in range(3):
        log.write("GET", f"/assets/a/{i}", 200, i, 0.001, None, "hit", "127.0.0.1", "ua")
    assert _lines(caplog) == []
    await asyncio.sleep(0.2)
    assert [line["path"] for line in _lines(caplog)] == ["/assets/a/0", "/assets/a/1",
                                                        "/assets/a/2"]
    assert len([r for r in caplog.records if r.name == "sori.access"]) == 1


async def test_a_full_batch_is_written_at_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sori.access")
    log = AccessLog(True)
    for i in range(accesslog.BATCH + 1):
        log.write("GET", f"/{i}", 200, 0, 0.0, None, None, None, None)
    assert len(_lines(caplog)) == accesslog.BATCH
    log.flush()
    assert len(_lines(caplog)) == accesslog.BATCH + 1


def test_disabled_writes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sori.access")
    log = AccessLog(False)
    log.write("GET", "/", 200, 0, 0.0, None, None, None, None)
    log.flush()
    assert _lines(caplog) == []
