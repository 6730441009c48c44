"""The pure parts of the live client (sori/client.py) and of `sori live` (sori/cli.py):
chunk sizing by format, the rate sent for a source, the real-time pacing schedule."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sori import cli
from sori.client import PCM_RATES, LiveClient, LiveError, Pacer, PcmFormat, pcm_rate_for
from sori.config import OriginConfig


@pytest.mark.parametrize(("rate", "channels", "ms", "expected"), [
    (24000, 1, 200, 9600),  # OpenAI-style pcm: 4800 frames of 2 bytes
    (22050, 1, 200, 8820),  # Piper
    (44100, 2, 200, 35280),  # 8820 frames of 4 bytes
    (48000, 2, 20, 3840),
    (16000, 1, 1000, 32000),
    (22050, 1, 10, 440),  # 220.5 frames: whole frames only
    (8000, 1, 0.01, 2),  # never less than one frame
])
def test_chunk_bytes(rate: int, channels: int, ms: float, expected: int) -> None:
    assert PcmFormat(rate, channels).chunk_bytes(ms) == expected


@given(st.sampled_from(PCM_RATES), st.sampled_from((1, 2)), st.integers(10, 10_000))
def test_chunks_hold_whole_frames_of_the_asked_duration(rate: int, channels: int,
                                                        ms: int) -> None:
    fmt = PcmFormat(rate, channels)
    size = fmt.chunk_bytes(ms)
    assert size > 0 and size % fmt.frame_bytes == 0
    assert abs(fmt.seconds(size) - ms / 1000) <= 0.5 / rate + 1e-12


def test_format_object_and_times() -> None:
    fmt = PcmFormat(24000, 1)
    assert fmt.as_format() == {"codec": "pcm_s16le", "sample_rate": 24000, "channels": 1}
    assert fmt.bytes_per_second == 48000
    assert fmt.seconds(48000 * 3) == 3.0
    assert PcmFormat(44100, 2).frame_bytes == 4


def test_rates_the_origin_takes() -> None:
    from packager.live.formats import PCM_RATES as ORIGIN_RATES

    assert PCM_RATES == ORIGIN_RATES
    for rate in PCM_RATES:
        assert pcm_rate_for(rate) == rate
    assert pcm_rate_for(7000) == 8000
    assert pcm_rate_for(11000) == 11025
    assert pcm_rate_for(37800) == 44100
    assert pcm_rate_for(96000) == 48000
    assert pcm_rate_for(192000) == 48000


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pacing_schedule_is_relative_to_the_first_chunk() -> None:
    clock = FakeClock()
    pacer = Pacer(clock)
    assert pacer.delay(0.0) == 0.0  # the first chunk goes at once and starts the clock
    clock.now += 0.05  # sending it took 50 ms
    assert pacer.delay(0.2) == pytest.approx(0.15)
    clock.now += 0.15
    assert pacer.delay(0.4) == pytest.approx(0.2)
    clock.now += 0.9  # a slow origin: 0.7 s behind schedule ...
    assert pacer.delay(0.6) == 0.0  # ... sends at once,
    assert pacer.delay(0.8) == 0.0
    assert pacer.delay(2.0) == pytest.approx(0.9)  # and the schedule does not drift


def test_pacing_from_a_later_media_time() -> None:
    clock = FakeClock()
    pacer = Pacer(clock)
    assert pacer.delay(5.0) == 0.0  # resuming at 5 s of media: that is the start
    clock.now += 0.1
    assert pacer.delay(5.5) == pytest.approx(0.4)


async def test_paced_sends_take_the_media_time() -> None:
    pacer = Pacer()
    start = time.monotonic()
    for i in range(5):
        await pacer.wait(i * 0.05)
    assert 0.19 <= time.monotonic() - start < 0.5


def test_live_error_carries_the_expected_seq() -> None:
    e = LiveError("gap", 409, {"error": "gap", "expected": 3})
    assert e.expected == 3 and e.status == 409
    assert LiveError("down").expected is None and LiveError("down").status is None


def test_attaching_needs_an_id() -> None:
    with pytest.raises(ValueError, match="asset_id"):
        LiveClient("http://127.0.0.1:1", create=False)


@pytest.mark.parametrize(("host", "url"), [
    ("127.0.0.1", "http://127.0.0.1:8080"),
    ("0.0.0.0", "http://127.0.0.1:8080"),
    ("::", "http://[::1]:8080"),
    ("::1", "http://[::1]:8080"),
    ("localhost", "http://localhost:8080"),
])
def test_default_origin_url(host: str, url: str) -> None:
    assert cli._origin_url(OriginConfig(host=host)) == url


def test_sori_api_key_is_not_taken_for_a_setting(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """SORI_* variables are settings, but SORI_API_KEY is the client's key: with it set,
    `sori live` reaches its own input check instead of a config error."""
    monkeypatch.setenv("SORI_API_KEY", "k")
    assert cli.main(["live", "/nonexistent/talk.wav", "--id", "talk"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such file" in err[0], err


@pytest.mark.parametrize(("argv", "message"), [
    (["live", "x.wav", "--id", "../up"], "invalid asset id"),
    (["live", "x.wav", "--id", "ok", "--chunk-ms", "5"], "--chunk-ms"),
    (["live", "x.wav", "--id", "ok", "--url", "ftp://h/"], "--url"),
])
def test_bad_arguments_exit_2(argv: list[str], message: str,
                              capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
