"""Real-time loudness levelling of TTS speech towards a target (ITU-R BS.1770 / EBU R128).

The integrated loudness of everything received so far is measured as it arrives
(K-weighting, 400 ms blocks every 100 ms, absolute gate -70 LUFS, relative gate -10 LU,
kept as a histogram so each update costs the same for an hour as for a second). The gain
that takes that loudness to the target is applied to the samples, ramped across each
buffer so it never steps. TTS voices hold a steady level, so the estimate settles within
the first sentence; the look-ahead is the buffer in hand (what the engine just sent),
never a delay. Peaks are left to the encoder's look-ahead limiter (5 ms).

Works on float32 samples, interleaved, any rate; numpy and scipy do the filtering.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal

ABSOLUTE_GATE = -70.0
RELATIVE_GATE = -10.0
MAX_GAIN_DB = 30.0
MIN_GAIN_DB = -30.0
# How fast the gain may move once the first seconds have set it (dB per second).
SLEW_DB_PER_S = 3.0
SETTLE_S = 3.0  # before this much speech was heard, the gain follows the estimate at once
_BIN_DB = 0.1
_BIN_LOW = ABSOLUTE_GATE
_BINS = int((10.0 - _BIN_LOW) / _BIN_DB) + 1


def k_weighting(rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(b1, a1, b2, a2): the two biquads of BS.1770's K-weighting at `rate`, from the
    analogue prototypes of the standard's 48 kHz coefficients (bilinear transform)."""
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / rate)
    vh = 10 ** (gain_db / 20)
    vb = vh ** 0.4996667741545416
    a0 = 1 + k / q + k * k
    b1 = np.array([(vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0,
                   (vh - vb * k / q + k * k) / a0])
    a1 = np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0])
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / rate)
    a0 = 1 + k / q + k * k
    b2 = np.array([1.0, -2.0, 1.0])
    a2 = np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0])
    return b1, a1, b2, a2


def _lufs(power: float) -> float:
    return -0.691 + 10 * math.log10(power) if power > 0 else -math.inf


class Leveller:
    """Measures and levels one stream. `process` returns the levelled samples."""

    def __init__(self, rate: int, channels: int, target: float) -> None:
        self.rate = rate
        self.channels = channels
        self.target = target
        self._b1, self._a1, self._b2, self._a2 = k_weighting(rate)
        self._z1 = np.zeros((channels, 2))
        self._z2 = np.zeros((channels, 2))
        self._hop = rate // 10  # 100 ms sub-blocks
        self._partial = np.zeros(channels)  # sum of squares of the current sub-block
        self._partial_n = 0
        self._subs: list[float] = []  # mean square (summed over channels) of the last 3 hops
        self._counts = np.zeros(_BINS)
        self._sums = np.zeros(_BINS)
        self.gain_db = 0.0
        self._have_gain = False
        self.heard = 0.0  # seconds of gated speech

    # --- measurement ------------------------------------------------------------------

    def _measure(self, x: np.ndarray) -> None:
        """Feed (frames, channels) float64 samples into the K-weighted block measurement."""
        y = np.empty_like(x)
        for c in range(self.channels):
            stage, self._z1[c] = signal.lfilter(self._b1, self._a1, x[:, c], zi=self._z1[c])
            y[:, c], self._z2[c] = signal.lfilter(self._b2, self._a2, stage, zi=self._z2[c])
        pos = 0
        n = len(y)
        while pos < n:
            take = min(self._hop - self._partial_n, n - pos)
            seg = y[pos:pos + take]
            self._partial += np.einsum("ij,ij->j", seg, seg)
            self._partial_n += take
            pos += take
            if self._partial_n == self._hop:
                self._close_hop(float(self._partial.sum()) / self._hop)
                self._partial[:] = 0
                self._partial_n = 0

    def _close_hop(self, mean_square: float) -> None:
        self._subs.append(mean_square)
        if len(self._subs) < 4:
            return
        block = sum(self._subs[-4:]) / 4  # 400 ms block, 75% overlap
        del self._subs[:-3]
        loudness = _lufs(block)
        if loudness <= ABSOLUTE_GATE:
            return
        i = min(_BINS - 1, int((loudness - _BIN_LOW) / _BIN_DB))
        self._counts[i] += 1
        self._sums[i] += block
        self.heard += 0.1

    def integrated(self) -> float:
        """Gated integrated loudness of everything measured so far (LUFS; -inf if none)."""
        total = self._counts.sum()
        if total == 0:
            return -math.inf
        ungated = self._sums.sum() / total
        gate = _lufs(ungated) + RELATIVE_GATE
        start = max(0, int(math.ceil((gate - _BIN_LOW) / _BIN_DB)))
        counts = self._counts[start:].sum()
        if counts == 0:
            return _lufs(ungated)
        return _lufs(self._sums[start:].sum() / counts)

    def _provisional(self, x: np.ndarray) -> float:
        """Loudness of the buffer in hand, before any full block was measured."""
        b1, a1, b2, a2 = self._b1, self._a1, self._b2, self._a2
        power = 0.0
        for c in range(self.channels):
            y = signal.lfilter(b2, a2, signal.lfilter(b1, a1, x[:, c]))
            power += float(np.mean(y * y))
        return _lufs(power)

    # --- levelling --------------------------------------------------------------------

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Level interleaved float32 `samples` (length a multiple of channels)."""
        if samples.size == 0:
            return samples
        x = samples.astype(np.float64).reshape(-1, self.channels)
        self._measure(x)
        loudness = self.integrated()
        if not math.isfinite(loudness) and not self._have_gain:
            loudness = self._provisional(x)
        before = self.gain_db
        if math.isfinite(loudness) and loudness > ABSOLUTE_GATE:
            wanted = max(MIN_GAIN_DB, min(MAX_GAIN_DB, self.target - loudness))
            if not self._have_gain or self.heard < SETTLE_S:
                self.gain_db = wanted
                if not self._have_gain:
                    before = wanted
                self._have_gain = True
            else:
                step = SLEW_DB_PER_S * len(x) / self.rate
                self.gain_db += max(-step, min(step, wanted - self.gain_db))
        g0 = 10 ** (before / 20)
        g1 = 10 ** (self.gain_db / 20)
        if abs(g1 - g0) < 1e-9:
            out = x * g1
        else:
            ramp = np.linspace(g0, g1, len(x), endpoint=False)[:, None]
            out = x * ramp
        return out.astype(np.float32).reshape(-1)
