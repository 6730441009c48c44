"""Real-time loudness levelling of TTS speech towards a target (ITU-R BS.1770 / EBU R128).

The integrated loudness of everything received so far is measured as it arrives
(K-weighting, 400 ms blocks every 100 ms, absolute gate -70 LUFS, relative gate -10 LU,
kept as a histogram so each update costs the same for an hour as for a second). The gain
that takes that loudness to the target is applied to the samples, ramped across each
buffer so it never steps. TTS voices hold a steady level, so the estimate settles within
the first sentence; the look-ahead is the buffer in hand (what the engine just sent),
never a delay. Peaks are left to the encoder's look-ahead limiter (5 ms).

Works on float32 samples, interleaved, any rate. The K-weighted power of each 100 ms hop
is taken in the frequency domain (Parseval: the power spectrum times the K-filter's
squared magnitude response), so numpy alone does it, in one FFT per hop; the difference
from filtering in the time domain is a few hundredths of a dB on speech.
"""

from __future__ import annotations

import math

import numpy as np

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
        self._weight_cache: dict[int, np.ndarray] = {}
        self._hop = rate // 10  # 100 ms sub-blocks
        self._pending: list[np.ndarray] = []  # samples of the current sub-block
        self._partial_n = 0
        self._subs: list[float] = []  # mean square (summed over channels) of the last 3 hops
        self._counts = np.zeros(_BINS)
        self._sums = np.zeros(_BINS)
        self.gain_db = 0.0
        self._have_gain = False
        self.heard = 0.0  # seconds of gated speech

    # --- measurement ------------------------------------------------------------------

    def _weights(self, n: int) -> np.ndarray:
        """|H(f)|^2 of the K-weighting at the rfft bins of an n-sample block, with the
        one-sided spectrum's doubling folded in and the 1/n^2 of Parseval."""
        w = self._weight_cache.get(n)
        if w is None:
            z = np.exp(-1j * np.pi * np.arange(n // 2 + 1) / (n / 2))

            def response(b: np.ndarray, a: np.ndarray) -> np.ndarray:
                num = b[0] + b[1] * z + b[2] * z * z
                den = a[0] + a[1] * z + a[2] * z * z
                out: np.ndarray = np.abs(num / den) ** 2
                return out

            w = response(self._b1, self._a1) * response(self._b2, self._a2)
            w[1:(n + 1) // 2] *= 2
            w /= float(n) * n
            self._weight_cache[n] = w
        return w

    def _power(self, x: np.ndarray) -> float:
        """Mean square of the K-weighted block `x` (frames, channels), summed over channels."""
        spectrum = np.fft.rfft(x, axis=0)
        power = (spectrum.real ** 2 + spectrum.imag ** 2).sum(axis=1)
        return float(power @ self._weights(len(x)))

    def _measure(self, x: np.ndarray) -> None:
        """Feed (frames, channels) samples into the K-weighted 100 ms hop measurement."""
        pos = 0
        n = len(x)
        while pos < n:
            take = min(self._hop - self._partial_n, n - pos)
            self._pending.append(x[pos:pos + take])
            self._partial_n += take
            pos += take
            if self._partial_n == self._hop:
                block = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
                self._close_hop(self._power(block))
                self._pending = []
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
        return _lufs(self._power(x)) if len(x) else -math.inf

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
