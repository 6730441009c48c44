"""packager.live.upmix against ffmpeg's AAC decoder: a mono encode made stereo decodes to
both channels equal, bit for bit, to the mono decode, over long and short windows, every
rung's rate, silence, and the fill element ffmpeg writes every 256 frames; and the live
encoder command encodes a mono source's stereo rungs that way, at -3 dB a channel."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_live_support import make_speech, wav_pcm

from packager.audio import aac_cmaf
from packager.live.encoder import encoder_args, parse_adts
from packager.live.upmix import UpmixError, mono_to_stereo
from settings import AudioRung, PackagerConfig

RATE = 22050


def _adts(cfg: aac_cmaf.AdtsConfig, payload: bytes, channels: int) -> bytes:
    length = len(payload) + 7
    return bytes([0xFF, 0xF1,
                  ((cfg.profile - 1) << 6) | (cfg.sample_rate_index << 2) | (channels >> 2),
                  ((channels & 3) << 6) | (length >> 11), (length >> 3) & 0xFF,
                  ((length & 7) << 5) | 0x1F, 0xFC]) + payload


def _decode(data: bytes) -> tuple[np.ndarray, int]:
    out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "aac", "-i", "pipe:0",
                          "-f", "f32le", "pipe:1"], input=data, capture_output=True, check=True)
    assert not out.stderr, out.stderr[-300:]
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=channels",
                            "-of", "csv=p=0", "-f", "aac", "-"], input=data,
                           capture_output=True, check=True)
    return np.frombuffer(out.stdout, dtype="<f4"), int(probe.stdout.decode().strip())


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """Speech, then silence, then clicks (transients: the encoder switches to short
    windows), then noise: 22.05 kHz mono float."""
    wav = tmp_path_factory.mktemp("upmix") / "speech.wav"
    make_speech(wav, "Upmixed speech keeps both channels equal, frame after frame.")
    rate, _channels, pcm = wav_pcm(wav)
    assert rate == RATE
    speech = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
    clicks = np.zeros(RATE * 2, np.float32)
    clicks[::2205] = 0.9
    noise = np.random.default_rng(1).normal(0, 0.1, RATE * 12).astype(np.float32)
    return np.concatenate([speech, np.zeros(RATE, np.float32), clicks, noise])


@pytest.mark.parametrize(("rate", "bitrate"), [(22050, 64_000), (44100, 128_000),
                                               (48000, 320_000)])
def test_upmixed_frames_decode_to_the_mono_signal_in_both_channels(
        source: np.ndarray, rate: int, bitrate: int) -> None:
    out = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "f32le", "-ar", str(RATE), "-ac", "1",
         "-i", "pipe:0", "-af", f"aresample={rate}", "-c:a", "aac", "-aac_coder", "fast",
         "-aac_tns", "0", "-aac_pns", "0", "-b:a", str(bitrate), "-f", "adts", "pipe:1"],
        input=source.tobytes(), capture_output=True, check=True)
    frames, used = parse_adts(out.stdout)
    assert used == len(out.stdout) and len(frames) > 256  # a second fill element too
    short = sum(1 for _cfg, f in frames if (int.from_bytes(f[:4], "big") >> 14) & 3 == 2)
    assert short > 0, "no short-window frame to check"
    mono = b"".join(_adts(cfg, f, 1) for cfg, f in frames)
    stereo = b"".join(_adts(cfg, mono_to_stereo(f), 2) for cfg, f in frames)
    m, m_channels = _decode(mono)
    s, s_channels = _decode(stereo)
    assert (m_channels, s_channels) == (1, 2)
    assert len(s) == 2 * len(m)
    assert np.array_equal(s[0::2], m) and np.array_equal(s[1::2], m)
    assert np.abs(m).max() > 0.1


def test_a_frame_that_is_not_one_mono_element_is_refused() -> None:
    with pytest.raises(UpmixError):
        mono_to_stereo(b"\x00\x00")
    with pytest.raises(UpmixError):
        mono_to_stereo(bytes([0x20]) + bytes(20))  # a CPE already


def test_the_live_encoder_encodes_a_mono_sources_stereo_rungs_once_in_mono(
        source: np.ndarray, tmp_path: Path) -> None:
    rungs = [*PackagerConfig().audio_ladder, AudioRung("mono", 64_000, 22050, 1)]
    outs = [tmp_path / f"{r.id}.aac" for r in rungs]
    fds = [os.open(p, os.O_WRONLY | os.O_CREAT) for p in outs]
    try:
        cmd = encoder_args(RATE, 1, rungs, "fast", None, fds)
        subprocess.run(cmd, input=source.tobytes(), pass_fds=fds, check=True,
                       capture_output=True)
    finally:
        for fd in fds:
            os.close(fd)
    for rung, path in zip(rungs, outs, strict=True):
        frames, _ = parse_adts(path.read_bytes())
        assert {cfg.channel_config for cfg, _f in frames} == {1}, rung.id
        assert {cfg.sample_rate for cfg, _f in frames} == {rung.sample_rate}
    # -3 dB a channel, as ffmpeg's own mono-to-stereo: the 22.05 kHz rung against the
    # mono rung at the same rate and bitrate, over the speech (both lossy).
    low = _decode(outs[0].read_bytes())[0][:2 * RATE]
    mono = _decode(outs[-1].read_bytes())[0][:2 * RATE]
    ratio_db = 10 * np.log10(np.mean(low ** 2) / np.mean(mono ** 2))
    assert abs(ratio_db + 3.01) < 0.1, ratio_db
