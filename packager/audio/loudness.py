"""Loudness normalisation of spoken audio: measure (EBU R128 / ITU-R BS.1770), then gain.

Pass one decodes the whole input once through ffmpeg's `ebur128` filter (integrated
loudness and 4x-oversampled true peak); it doubles as the check that the input decodes
cleanly to its end. The encode then applies a fixed gain: a linear gain keeps speech
dynamics intact, unlike a dynamic normaliser. Only when that gain would push the true
peak over the ceiling does a look-ahead limiter follow it; limiting lowers the loudness
(by 0.5-1.5 LU on synthetic speech), so two calibration passes measure the limited
result at two gains, run side by side, and the final gain is interpolated between them.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from packager import process
from packager.errors import InvalidInput, PackagerError

# Headroom between the sample-peak limiter (or the linear gain) and the true-peak ceiling,
# for inter-sample peaks and AAC coding overshoot.
LIMITER_MARGIN_DB = 0.5
CALIBRATION_STEP_DB = 2.0
LIMITER = "alimiter=limit={limit:.4f}:attack=5:release=20:level=false:latency=true"
MAX_GAIN_DB = 30.0
SILENCE_LUFS = -70.0  # the absolute gate of BS.1770: below it there is nothing to measure

_I = re.compile(r"^\s*I:\s*(-?[\d.]+|-inf|nan)\s*LUFS", re.M)
_PEAK = re.compile(r"^\s*Peak:\s*(-?[\d.]+|-inf|nan)\s*dBFS", re.M)


@dataclass(frozen=True)
class Measurement:
    integrated: float  # LUFS (-inf for silence)
    true_peak: float  # dBTP
    decoded_duration: float  # seconds actually decoded


@dataclass(frozen=True)
class GainPlan:
    gain_db: float
    limit_db: float | None  # sample-peak ceiling of the limiter, or None for no limiter

    def filters(self) -> list[str]:
        """ffmpeg audio filters applying the plan (empty when there is nothing to do)."""
        out = []
        if abs(self.gain_db) >= 0.01:
            out.append(f"volume={self.gain_db:.2f}dB")
        if self.limit_db is not None:
            limit = max(0.0625, 10 ** (self.limit_db / 20))
            out.append(LIMITER.format(limit=limit))
        return out


def plan(m: Measurement, target: float, ceiling: float) -> GainPlan:
    """The gain that brings `m` to `target` LUFS with true peak at most `ceiling` dBTP."""
    if not math.isfinite(m.integrated) or m.integrated <= SILENCE_LUFS:
        return GainPlan(0.0, None)  # silence: leave it be
    gain = max(-MAX_GAIN_DB, min(MAX_GAIN_DB, target - m.integrated))
    peak_after = m.true_peak + gain if math.isfinite(m.true_peak) else -math.inf
    if peak_after > ceiling - LIMITER_MARGIN_DB:
        return GainPlan(gain, ceiling - LIMITER_MARGIN_DB)
    return GainPlan(gain, None)


def parse_summary(stderr: str) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) from the ebur128 filter's summary."""
    i_match = _I.findall(stderr)
    p_match = _PEAK.findall(stderr)
    if not i_match:
        raise PackagerError("ebur128 printed no summary")
    integrated = float(i_match[-1]) if i_match[-1] != "nan" else -math.inf
    peak = float(p_match[-1]) if p_match and p_match[-1] != "nan" else -math.inf
    return integrated, peak


def decode_errors(stderr: str) -> list[str]:
    """Lines ffmpeg logged at error level or worse (run with `-loglevel level+info`)."""
    return [line.split("]", 1)[-1].strip() for line in stderr.splitlines()
            if line.startswith(("[error]", "[fatal]", "[panic]"))]


def check_decoded(name: str, stderr: str, code: int, decoded: float, expected: float) -> None:
    """Refuse an input that did not decode cleanly to the end its container announces."""
    errors = decode_errors(stderr)
    if code != 0 or errors:
        first = errors[0] if errors else f"ffmpeg exited with {code}"
        raise InvalidInput(f"{name}: corrupt media ({first})")
    if expected > 1.0 and decoded < 0.9 * expected - 0.5:
        raise InvalidInput(f"{name}: truncated: decodes to {decoded:.1f} s of the "
                           f"{expected:.1f} s its header announces")
    if decoded <= 0:
        raise InvalidInput(f"{name}: no audio could be decoded")


async def measure(path: Path, stream_index: int, expected: float,
                  on_time: Callable[[float], None] | None = None) -> Measurement:
    """Decode the whole input once: loudness, true peak, and a clean-decode check."""
    decoded = 0.0

    def seen(t: float) -> None:
        nonlocal decoded
        decoded = max(decoded, t)
        if on_time:
            on_time(t)

    code, stderr = await process.run([
        process.FFMPEG, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "level+info",
        "-progress", "pipe:1", "-i", str(path), "-map", f"0:{stream_index}",
        "-af", "ebur128=peak=true:framelog=verbose", "-f", "null", "-",
    ], on_time=seen)
    # framelog lines are per 100 ms; drop them before looking for errors and the summary
    stderr = "\n".join(ln for ln in stderr.splitlines() if " t: " not in ln)
    check_decoded(path.name, stderr, code, decoded, expected)
    integrated, peak = parse_summary(stderr)
    return Measurement(integrated, peak, decoded)


async def _limited_loudness(path: Path, stream_index: int, gain: GainPlan) -> float:
    code, stderr = await process.run([
        process.FFMPEG, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "level+info",
        "-i", str(path), "-map", f"0:{stream_index}",
        "-af", ",".join([*gain.filters(), "ebur128=peak=true:framelog=verbose"]),
        "-f", "null", "-"])
    if code != 0:
        raise PackagerError(f"loudness calibration failed: {stderr.strip()[-300:]}")
    return parse_summary(stderr)[0]


async def calibrate(path: Path, stream_index: int, first: GainPlan, target: float) -> GainPlan:
    """Refine a limited plan so the limited output lands on `target` (secant step between
    two measured gains; returns `first` unchanged when no limiter is involved)."""
    if first.limit_db is None:
        return first
    a = first
    b = GainPlan(first.gain_db + CALIBRATION_STEP_DB, first.limit_db)
    loud_a, loud_b = await asyncio.gather(_limited_loudness(path, stream_index, a),
                                          _limited_loudness(path, stream_index, b))
    if not (math.isfinite(loud_a) and math.isfinite(loud_b)) or loud_b - loud_a < 0.05:
        gain = b.gain_db if abs(target - loud_b) < abs(target - loud_a) else a.gain_db
    else:
        slope = (loud_b - loud_a) / (b.gain_db - a.gain_db)
        gain = a.gain_db + (target - loud_a) / slope
    gain = max(a.gain_db, min(a.gain_db + 3 * CALIBRATION_STEP_DB, gain, MAX_GAIN_DB))
    return GainPlan(gain, first.limit_db)
