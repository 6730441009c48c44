"""Probe decisions on ffprobe JSON and WAV headers (pure)."""

from __future__ import annotations

import struct
from pathlib import Path

from packager import probe


def wav_header(data_len: int) -> bytes:
    fmt = struct.pack("<HHIIHH", 1, 1, 22050, 44100, 2, 16)
    return (b"RIFF" + struct.pack("<I", _riff_size(data_len)) + b"WAVE" + b"fmt " +
            struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", data_len))


def _riff_size(data_len: int) -> int:
    return min(0xFFFFFFFF, 36 + data_len)


def test_wav_shortfall() -> None:
    head = wav_header(1000)
    assert probe.wav_shortfall(head, len(head) + 1000) == 0
    assert probe.wav_shortfall(head, len(head) + 400) == 600
    assert probe.wav_shortfall(wav_header(0xFFFFFFFF), 100) == 0  # streaming writer
    assert probe.wav_shortfall(b"ID3\x03" + bytes(100), 104) == 0  # not a WAV


def test_cover_art_is_not_video() -> None:
    data = {"format": {"format_name": "mp3", "duration": "12.5"}, "streams": [
        {"index": 0, "codec_type": "audio", "codec_name": "mp3", "sample_rate": "44100",
         "channels": 2},
        {"index": 1, "codec_type": "video", "codec_name": "mjpeg", "width": 500, "height": 500,
         "disposition": {"attached_pic": 1}},
    ]}
    r = probe.parse(Path("x.mp3"), 10, data)
    assert r.kind == "audio" and r.video is None and r.audio is not None
    assert r.audio.sample_rate == 44100 and r.duration == 12.5


def test_video_with_rotation_and_rate() -> None:
    data = {"format": {"format_name": "mov,mp4", "duration": "3"}, "streams": [
        {"index": 0, "codec_type": "video", "codec_name": "h264", "width": 1920, "height": 1080,
         "avg_frame_rate": "30000/1001", "side_data_list": [{"rotation": -90}]},
    ]}
    r = probe.parse(Path("x.mp4"), 10, data)
    assert r.kind == "video" and r.audio is None
    assert r.video is not None and r.video.rotation == 90
    assert abs(r.video.frame_rate - 29.97) < 0.01


def test_missing_duration_falls_back_to_streams() -> None:
    data = {"format": {"format_name": "ogg"}, "streams": [
        {"index": 0, "codec_type": "audio", "codec_name": "opus", "sample_rate": "48000",
         "channels": 1, "duration": "4.5"}]}
    assert probe.parse(Path("x.ogg"), 10, data).duration == 4.5
