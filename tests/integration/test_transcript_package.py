"""`sori package --transcript`: real espeak-ng speech with its exact sentence times as
JSON, SRT and WebVTT; the subtitles rendition, transcript files and chapters it publishes
(RFC 8216 rules, the MPD against the DASH schema), cues in sync with the packaged audio,
a video asset with a transcript, and bad transcripts refused with exit 2 leaving nothing."""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path
from typing import Any

import m3u8
import numpy as np
import pytest
from audio_checks import dash_schema
from lxml import etree
from real_clients import SORI, local_env, make_video
from test_transcript_support import TimedCue, as_json, as_srt, as_vtt, timed_speech

from manifests import boxes, layout

MPD_NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
_CUE = re.compile(r"(\d+)\n(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\n"
                  r"(.+?)\n\n", re.S)


def _cues(vtt: str) -> list[tuple[int, int, int, str]]:
    out = []
    for m in _CUE.finditer(vtt):
        g = m.groups()
        start = ((int(g[1]) * 60 + int(g[2])) * 60 + int(g[3])) * 1000 + int(g[4])
        end = ((int(g[5]) * 60 + int(g[6])) * 60 + int(g[7])) * 1000 + int(g[8])
        out.append((int(g[0]), start, end, g[9]))
    return out


def _sori_package(root: Path, src: Path, asset_id: str, *extra: str,
                  ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SORI), "package", str(src), "--id", asset_id, "--json", *extra],
                          env=local_env(root, SORI_PACKAGER_SEGMENT_DURATION="2.0"),
                          capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[TimedCue], Path]:
    work = tmp_path_factory.mktemp("talk")
    wav, cues = timed_speech(work / "speech")
    (work / "t.json").write_text(as_json(cues), encoding="utf-8")
    (work / "t.srt").write_text(as_srt(cues), encoding="utf-8")
    (work / "t.vtt").write_text(as_vtt(cues), encoding="utf-8")
    return wav, cues, work


@pytest.fixture(scope="module")
def packaged(talk: tuple[Path, list[TimedCue], Path], tmp_path_factory: pytest.TempPathFactory,
             ) -> tuple[Path, dict[str, dict[str, Any]]]:
    """The talk packaged three times, once with each transcript format."""
    wav, _cues, work = talk
    root = tmp_path_factory.mktemp("store")
    records = {}
    for fmt in ("json", "srt", "vtt"):
        proc = _sori_package(root, wav, f"talk-{fmt}", "--transcript", str(work / f"t.{fmt}"))
        assert proc.returncode == 0, proc.stderr
        records[fmt] = json.loads(proc.stdout)
    return root, records


def _local(root: Path, url: str) -> Path:
    assert url.startswith("/assets/"), url
    return root / url.removeprefix("/assets/")


@pytest.mark.parametrize("fmt", ["json", "srt", "vtt"])
def test_subtitles_rendition_follows_the_media(packaged: tuple[Path, dict[str, dict[str, Any]]],
                                               talk: tuple[Path, list[TimedCue], Path],
                                               fmt: str) -> None:
    root, records = packaged
    rec = records[fmt]
    cues = talk[1]
    asset = root / rec["id"]
    master = m3u8.load(str(asset / layout.MASTER))
    subs = [m for m in master.media if m.type == "SUBTITLES"]
    assert len(subs) == 1
    s = subs[0]
    assert (s.group_id, s.default, s.autoselect) == ("subs", "NO", "YES")
    assert s.language == ("en" if fmt == "json" else "und") and s.name
    assert master.playlists and all(p.stream_info.subtitles == "subs" for p in master.playlists)

    subs_pl = m3u8.load(str(asset / s.uri))
    assert subs_pl.is_endlist and subs_pl.playlist_type == "vod"
    durations = [x.duration for x in subs_pl.segments]
    exact = 0
    for p in master.playlists:
        media = m3u8.load(str(asset / p.uri))
        # one WebVTT segment per media segment, of its duration (the renditions' segments
        # end on their own AAC frame grids, so they agree with the reference within a frame)
        theirs = [x.duration for x in media.segments]
        assert len(theirs) == len(durations)
        assert max(abs(a - b) for a, b in zip(theirs, durations, strict=True)) <= 1024 / 22050 + 1e-6
        exact += theirs == durations
        assert subs_pl.target_duration == media.target_duration
    assert exact >= 1
    assert all(round(x.duration) <= subs_pl.target_duration for x in subs_pl.segments)

    # X-TIMESTAMP-MAP: MPEGTS is the media's first presentation time in 90 kHz units
    low = asset / Path(master.playlists[0].uri).parent
    track = boxes.parse_init((low / layout.INIT).read_bytes())
    first = boxes.parse_fragments((low / layout.segment_name(1)).read_bytes(), track.defaults)
    mpegts = first[0].base_decode_time * 90000 // track.timescale
    assert mpegts == 0  # sori's CMAF audio starts at 0: priming dropped, no edit list

    shown: dict[int, tuple[int, int, str]] = {}
    t = 0.0
    for seg in subs_pl.segments:
        text = (asset / Path(s.uri).parent / seg.uri).read_text(encoding="utf-8")
        assert text.startswith(f"WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{mpegts},LOCAL:00:00:00.000\n")
        for cid, start, end, body in _cues(text):
            assert start / 1000 < t + seg.duration and end / 1000 > t, (seg.uri, cid)
            assert shown.setdefault(cid, (start, end, body)) == (start, end, body)
        t += seg.duration
    # the cues are the transcript's, at its exact times, as plain text (markup stripped)
    assert [shown[i] for i in sorted(shown)] == [
        (round(c.start * 1000), round(c.end * 1000), c.text) for c in cues]

    whole = _local(root, rec["transcript"]).read_text(encoding="utf-8")
    assert [(a, b, x) for _i, a, b, x in _cues(whole)] == [shown[i] for i in sorted(shown)]
    assert "<" not in whole and "Narrator" not in whole
    assert _local(root, rec["transcript_text"]).read_text(encoding="utf-8").split() == \
        " ".join(c.text for c in cues).split()


@pytest.mark.parametrize("fmt", ["json", "vtt"])
def test_mpd_has_a_schema_valid_text_track(packaged: tuple[Path, dict[str, dict[str, Any]]],
                                           fmt: str) -> None:
    root, records = packaged
    asset = root / records[fmt]["id"]
    doc = etree.parse(str(asset / layout.MPD))
    dash_schema().assertValid(doc)
    sets = doc.findall(".//d:AdaptationSet", MPD_NS)
    text = [a for a in sets if a.get("contentType") == "text"]
    assert len(text) == 1 and text[0].get("mimeType") == "text/vtt"
    base = text[0].find("d:Representation/d:BaseURL", MPD_NS)
    assert base is not None and (asset / base.text).read_text().startswith("WEBVTT")
    assert _local(root, records[fmt]["transcript"]) == asset / base.text


def test_chapters(packaged: tuple[Path, dict[str, dict[str, Any]]],
                  talk: tuple[Path, list[TimedCue], Path]) -> None:
    root, records = packaged
    rec = records["json"]
    marked = [(c.start, c.chapter) for c in talk[1] if c.chapter]
    chapters = json.loads(_local(root, rec["chapters"]).read_text(encoding="utf-8"))
    assert [(c["chapter"], c["start-time"], c["titles"]) for c in chapters] == [
        (i, start, [{"language": "en", "title": title}])
        for i, (start, title) in enumerate(marked, 1)]
    assert math.isclose(chapters[-1]["start-time"] + chapters[-1]["duration"], rec["duration"],
                        abs_tol=0.002)
    master = (root / rec["id"] / layout.MASTER).read_text()
    uri = rec["chapters"].split(f"/assets/{rec['id']}/", 1)[1]
    assert f'#EXT-X-SESSION-DATA:DATA-ID="com.apple.hls.chapters",URI="{uri}"' in master
    vtt = (_local(root, rec["chapters"]).with_suffix(".vtt")).read_text(encoding="utf-8")
    assert [(a / 1000, x) for _i, a, _b, x in _cues(vtt)] == marked
    # SRT and WebVTT transcripts carry no chapters
    assert "chapters" not in records["srt"] and "SESSION-DATA" not in \
        (root / records["srt"]["id"] / layout.MASTER).read_text()


def _pcm(args: list[str]) -> np.ndarray:
    out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", *args, "-ac", "1", "-ar", "16000",
                          "-f", "s16le", "-"], check=True, capture_output=True, timeout=60).stdout
    return np.frombuffer(out, dtype="<i2").astype(np.float64)


def test_packaged_audio_keeps_the_source_timeline(packaged: tuple[Path, dict[str, dict[str, Any]]],
                                                  talk: tuple[Path, list[TimedCue], Path],
                                                  tmp_path: Path) -> None:
    """The cue times are the source's; the packaged media (what a player decodes from the
    segments, after loudness processing and AAC priming) must be on the same timeline."""
    root, records = packaged
    asset = root / records["json"]["id"]
    master = m3u8.load(str(asset / layout.MASTER))
    src = _pcm(["-i", str(talk[0])])
    for p in master.playlists:
        rdir = asset / Path(p.uri).parent
        joined = tmp_path / f"{rdir.name}.mp4"
        media = m3u8.load(str(asset / p.uri))
        joined.write_bytes((rdir / layout.INIT).read_bytes() + b"".join(
            (rdir / s.uri).read_bytes() for s in media.segments))
        out = _pcm(["-i", str(joined)])
        n = min(len(src), len(out), 16000 * 8)
        a, b = src[:n] - src[:n].mean(), out[:n] - out[:n].mean()
        corr = np.fft.irfft(np.fft.rfft(b, 2 * n) * np.conj(np.fft.rfft(a, 2 * n)))
        lags = np.concatenate([corr[:800], corr[-800:]])  # within +-50 ms
        lag = int(np.argmax(lags))
        lag = lag if lag < 800 else lag - 1600
        assert abs(lag) <= 8, f"{rdir.name}: packaged audio is {lag / 16:.1f} ms off the source"


BAD = {
    "overlap.json": (b'[{"start": 0.3, "end": 3, "text": "a"}, {"start": 2, "end": 4, "text": "b"}]',
                     "cues 1 (00:00:00.300 --> 00:00:03.000) and 2 (00:00:02.000 --> "
                     "00:00:04.000) overlap"),
    "late.srt": (b"1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:01:00,000 --> 00:01:02,000\n"
                 b"too late\n", "cue 2 (00:01:00.000 --> 00:01:02.000) starts after the audio's end"),
    "long.vtt": (b"WEBVTT\n\n00:00:20.000 --> 00:00:40.000\nruns past the end\n",
                 "ends after the audio's end"),
    "latin1.srt": ("1\n00:00:01,000 --> 00:00:02,000\nol\u00e9\n".encode("latin-1"),
                   "not UTF-8 text"),
    "empty.vtt": (b"", "the transcript is empty"),
    "markup.vtt": (b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<script>alert(1)</script>\n",
                   "no cue has any text"),
    "missing.json": (None, "cannot read"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_transcripts_exit_2_and_leave_nothing(talk: tuple[Path, list[TimedCue], Path],
                                                  tmp_path: Path, name: str) -> None:
    data, words = BAD[name]
    path = tmp_path / name
    if data is not None:
        path.write_bytes(data)
    root = tmp_path / "store"
    proc = _sori_package(root, talk[0], "bad", "--transcript", str(path))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and lines[0].startswith("sori: transcript: ")
    assert proc.stdout == ""
    assert not (root / "bad").exists()
    assert not root.exists() or not any(root.rglob("*.m4s"))


def test_video_with_a_transcript(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "clip.mp4", seconds=6.0, size="320x180")
    (tmp_path / "t.json").write_text(json.dumps([
        {"start": 0.5, "end": 2.5, "text": "A test pattern.", "chapter": True},
        {"start": 2.5, "end": 5.75, "text": "And a tone."}]))
    root = tmp_path / "store"
    proc = _sori_package(root, clip, "clip", "--transcript", str(tmp_path / "t.json"))
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(proc.stdout)
    asset = root / "clip"
    master = m3u8.load(str(asset / layout.MASTER))
    assert [m.type for m in master.media].count("SUBTITLES") == 1
    assert master.playlists and all(p.stream_info.subtitles == "subs" for p in master.playlists)
    text = (asset / layout.MASTER).read_text()
    assert all("SUBTITLES" not in ln for ln in text.splitlines()
               if ln.startswith("#EXT-X-I-FRAME-STREAM-INF"))
    audio = next(m for m in master.media if m.type == "AUDIO")
    subs = next(m for m in master.media if m.type == "SUBTITLES")
    assert len(m3u8.load(str(asset / subs.uri)).segments) == \
        len(m3u8.load(str(asset / audio.uri)).segments)
    dash_schema().assertValid(etree.parse(str(asset / layout.MPD)))
    assert {"transcript", "transcript_text", "chapters"} <= set(rec)
