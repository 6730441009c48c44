"""Packaging speed and memory: `sori package` against one plain ffmpeg command.

    .venv/bin/python -m bench.package_audio [--minutes 60] [--json]

Both sides get the same spoken-word WAV (bench/speech.py, 22.05 kHz mono) and make the
default audio ladder with the same AAC encoder settings:

- sori: `sori package SRC --id bench` exactly as a user runs it, with the default
  configuration (loudness normalisation on, aac_coder "fast", one encoder per core) and
  `SORI_STORAGE_ROOT` pointing at a temporary store. Its time includes probing, the
  loudness measurement pass, the encode, muxing, the progressive download and publishing.
- plain: `packager.audio.ffmpeg_args.plain_audio_ladder_args`, the single ffmpeg command a
  user would type (one decode, asplit, one AAC encoder per rung, ffmpeg's HLS fMP4
  muxer), so the encoder settings are the same by construction.

Each runs under bench.measure: wall time, realtime factor (media seconds per wall
second), the peak of the summed RSS of the whole process tree (sampled every 50 ms) and
the largest RSS of any single process. Targets (issue): sori at least 1.5x faster than
the plain command, sori's peak tree RSS at most 300 MB whatever the input length.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import speech
from bench.measure import Measured, cmdline, run_measured

SPEED_TARGET = 1.5
RSS_TARGET_MB = 300.0


def sori_command() -> list[str]:
    exe = Path(sys.executable).parent / "sori"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "sori"]


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without SORI_* settings (default configuration), plus
    `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SORI_")}
    env.update(extra)
    return env


def warm(path: Path) -> None:
    """Read the source once so both runs start with it in the page cache."""
    with open(path, "rb") as f:
        while f.read(1 << 20):
            pass


# What each ffmpeg process of a run is doing, from its arguments.
FFMPEG_ROLES = ("probe", "loudness", "encode", "remux", "ffmpeg")
_role_cache: dict[tuple[int, str], str] = {}


def ffmpeg_role(pid: int, name: str) -> str:
    if name not in ("ffmpeg", "ffprobe"):
        return name
    key = (pid, name)
    if key not in _role_cache:
        args = cmdline(pid)
        text = " ".join(args)
        if name == "ffprobe":
            role = "probe"
        elif "ebur128" in text:
            role = "loudness"
        elif "-c:a" in args or "-c:v" in args:
            role = "encode"
        elif "+faststart" in text:
            role = "remux"
        else:
            role = "ffmpeg"
        _role_cache[key] = role
    return _role_cache[key]


def run_sori(src: Path, work: Path) -> Measured:
    store = work / "store"
    return run_measured([*sori_command(), "package", str(src), "--id", "bench"],
                        env=clean_env(SORI_STORAGE_ROOT=str(store)),
                        cwd=Path(__file__).resolve().parent.parent, classify=ffmpeg_role)


def run_plain(src: Path, work: Path) -> Measured:
    from packager.audio.ffmpeg_args import plain_audio_ladder_args
    from sori.config import load

    cfg = load(env={}).packager
    out = work / "plain"
    for rung in cfg.audio_ladder:
        (out / rung.id).mkdir(parents=True, exist_ok=True)
    args = plain_audio_ladder_args(src, list(cfg.audio_ladder), cfg.aac_coder, out,
                                   cfg.segment_duration)
    return run_measured(args, classify=ffmpeg_role)


def _row(name: str, m: Measured, media: float) -> dict[str, Any]:
    phases = m.sampler.phases(FFMPEG_ROLES) if m.sampler else {}
    return {
        "name": name,
        "ok": m.returncode == 0,
        "returncode": m.returncode,
        "wall_s": round(m.wall, 2),
        "realtime_factor": round(media / m.wall, 1) if m.wall > 0 else None,
        "cpu_s": round(m.cpu, 1),
        "cores_used": round(m.cpu / m.wall, 2) if m.wall > 0 else None,
        "other_load_cores": round(m.other_load, 2),
        "peak_rss_tree_mb": round(m.peak_tree_mb, 1),
        "max_single_rss_mb": round(m.max_single_mb, 1),
        "peak_processes": m.peak_procs,
        # wall seconds by which ffmpeg/ffprobe processes were running ("-": none, i.e.
        # Python alone: start-up, muxing, publishing)
        "phases_s": {k: round(v, 1) for k, v in phases.items() if v >= 0.05},
        "stderr_tail": m.stderr.strip()[-500:] if m.returncode != 0 else "",
    }


def settings() -> dict[str, Any]:
    from sori.config import load

    p = load(env={}).packager
    return {"loudness": p.loudness, "aac_coder": p.aac_coder, "workers": p.workers,
            "cpu_count": os.cpu_count(), "segment_duration": p.segment_duration,
            "ladder": [f"{r.id} {r.bitrate // 1000}k {r.sample_rate} Hz {r.channels}ch"
                       for r in p.audio_ladder]}


def bench(minutes: float, keep: bool = False) -> dict[str, Any]:
    src = speech.speech_wav(minutes)
    media = speech.seconds_of(src)
    warm(src)
    work = Path(tempfile.mkdtemp(prefix="sori-bench-pkg-"))
    try:
        sori = run_sori(src, work)
        plain = run_plain(src, work)
        store_mb = _size_mb(work / "store")
        plain_mb = _size_mb(work / "plain")
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    rows = [_row("sori package", sori, media), _row("plain ffmpeg", plain, media)]
    ratio = plain.wall / sori.wall if sori.wall > 0 and sori.returncode == 0 else None
    return {
        "benchmark": "package_audio",
        "source": str(src),
        "media_seconds": media,
        "settings": settings(),
        "results": rows,
        "output_mb": {"sori store": store_mb, "plain": plain_mb},
        "speed_ratio": round(ratio, 2) if ratio else None,
        "targets": {
            "speed": {"target": f">= {SPEED_TARGET}x", "value": round(ratio, 2) if ratio else None,
                      "pass": bool(ratio and ratio >= SPEED_TARGET)},
            "peak_rss": {"target": f"<= {RSS_TARGET_MB:.0f} MB",
                         "value": round(sori.peak_tree_mb, 1),
                         "pass": sori.returncode == 0 and sori.peak_tree_mb <= RSS_TARGET_MB},
        },
        "work_dir": str(work) if keep else None,
    }


def _size_mb(path: Path) -> float:
    if not path.exists():
        return 0.0
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True)
    return round(int(out.stdout.split()[0]) / 1e6, 1) if out.returncode == 0 else 0.0


def print_report(r: dict[str, Any]) -> None:
    s = r["settings"]
    print(f"source: {r['source']} ({r['media_seconds']:.0f} s of speech, 22.05 kHz mono WAV)")
    print(f"ladder: {', '.join(s['ladder'])}; aac_coder={s['aac_coder']}; "
          f"sori: loudness={s['loudness']}, workers={s['workers']} "
          f"({s['cpu_count']} cores)")
    head = (f"{'name':<14} {'wall s':>8} {'x realtime':>10} {'cpu s':>7} {'cores':>5} "
            f"{'peak RSS tree MB':>16} {'max 1-proc RSS MB':>17} {'other load':>10}")
    print(head)
    print("-" * len(head))
    for row in r["results"]:
        flag = "" if row["ok"] else f"  FAILED (exit {row['returncode']})"
        print(f"{row['name']:<14} {row['wall_s']:>8.1f} {row['realtime_factor'] or 0:>10.1f} "
              f"{row['cpu_s']:>7.1f} {row['cores_used'] or 0:>5.2f} "
              f"{row['peak_rss_tree_mb']:>16.1f} {row['max_single_rss_mb']:>17.1f} "
              f"{row['other_load_cores']:>10.2f}{flag}")
    for row in r["results"]:
        if row["stderr_tail"]:
            print(f"{row['name']} stderr: {row['stderr_tail']}")
    print("sori wall time by what was running (\"-\" = Python only): "
          + "; ".join(f"{k}: {v:.1f} s" for k, v in r["results"][0]["phases_s"].items()))
    t = r["targets"]
    speed, rss = t["speed"], t["peak_rss"]
    print(f"speed ratio (plain wall / sori wall): {speed['value']}x  "
          f"target {speed['target']}  {'PASS' if speed['pass'] else 'MISS'}")
    print(f"sori peak RSS (tree): {rss['value']} MB  target {rss['target']}  "
          f"{'PASS' if rss['pass'] else 'MISS'}")
    print("cores = CPU seconds / wall seconds of the command's tree; other load = cores kept "
          "busy by unrelated processes during the run (figures are noisy when it is > 0.1)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.package_audio", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0, help="length of the speech input")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--keep", action="store_true", help="keep both outputs (prints where)")
    args = ap.parse_args(argv)
    result = bench(args.minutes, keep=args.keep)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result)
        if result["work_dir"]:
            print(f"outputs kept in {result['work_dir']}")
    return 0 if all(row["ok"] for row in result["results"]) else 1


if __name__ == "__main__":
    sys.exit(main())
