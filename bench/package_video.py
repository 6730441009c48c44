"""Benchmark: sori packaging a 1080p30 source into the default video ladder, side by side
with the plain ffmpeg command a user would type for the same renditions.

    python -m bench.package_video [--minutes 5] [--also 1]

The source (testsrc2 1920x1080 at 30 fps + a sine, high-bitrate H.264) is made once and
cached under bench/out/. Each run is a child process; its wall time and the peak RSS of
its whole process tree (the sum over every live descendant, sampled from /proc every
100 ms) are reported, with the largest single process's maxrss from getrusage.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"

_SORI = """
import asyncio, sys
from pathlib import Path
from packager import pipeline
from sori.config import PackagerConfig
from storage import LocalStore

async def main():
    store = LocalStore(Path(sys.argv[2]))
    await pipeline.package(Path(sys.argv[1]), store, PackagerConfig(), asset_id="bench",
                           work_root=Path(sys.argv[3]))
    await store.close()

asyncio.run(main())
"""


def make_source(minutes: float) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"src-{minutes:g}min-1080p30.mp4"
    if path.exists():
        return path
    tmp = path.with_suffix(".part.mp4")
    seconds = str(minutes * 60)
    subprocess.run([
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", seconds, "-map", "0:v", "-map", "1:a",
        "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "20M", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "192k", str(tmp)], check=True)
    tmp.rename(path)
    return path


def _tree_rss(root: int) -> int:
    """Sum of VmRSS (bytes) over `root` and all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/statm") as f:
                pages = int(f.read().split()[1])
        except (OSError, ValueError, IndexError):
            continue
        pid = int(entry)
        children.setdefault(ppid, []).append(pid)
        rss[pid] = pages * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack += children.get(pid, [])
    return total


def measure(args: list[str]) -> tuple[float, int, int, float]:
    """(wall seconds, peak tree RSS bytes, largest single-process maxrss bytes, CPU
    seconds of the tree). CPU time is the fair comparison on a loaded machine."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0 = usage.ru_utime + usage.ru_stime
    start = time.monotonic()
    proc = subprocess.Popen(args, cwd=ROOT, stdin=subprocess.DEVNULL)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            done.wait(0.1)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    code = proc.wait()
    wall = time.monotonic() - start
    done.set()
    t.join()
    if code != 0:
        raise SystemExit(f"command failed ({code}): {args[:6]}...")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime - cpu0
    return wall, peak, usage.ru_maxrss * 1024, cpu


def plain_command(src: Path, out_dir: Path) -> list[str]:
    import asyncio

    from packager import probe
    from packager.video.ffmpeg_args import plain_ladder_args
    from packager.video.ladder import display_size, gop_frames, output_frame_rate, plan_ladder
    from sori.config import PackagerConfig

    cfg = PackagerConfig()
    info = asyncio.run(probe.probe(src, max_duration=cfg.max_duration))
    assert info.video is not None
    outputs = plan_ladder(cfg.video_ladder, *display_size(info.video))
    fps = output_frame_rate(info.video.frame_rate)
    seg = cfg.segment_duration
    for o in outputs:
        (out_dir / o.id).mkdir(parents=True, exist_ok=True)
    (out_dir / "audio").mkdir(parents=True, exist_ok=True)
    return plain_ladder_args(src, info.video.index, outputs, Fraction(fps), cfg.x264_preset,
                             gop_frames(seg, fps), f"expr:gte(t,n_forced*{seg:g})", out_dir,
                             seg, cfg.video_audio_bitrate)


def run(minutes: float) -> dict[str, tuple[float, int, int, float]]:
    src = make_source(minutes)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-video-", dir=OUT) as tmp:
        plain_out = Path(tmp) / "plain"
        results["plain ffmpeg"] = measure(plain_command(src, plain_out))
        shutil.rmtree(plain_out)
        store, work = Path(tmp) / "store", Path(tmp) / "work"
        work.mkdir()
        results["sori"] = measure([sys.executable, "-c", _SORI, str(src), str(store), str(work)])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--also", type=float, nargs="*", default=[],
                        help="other source lengths to run (to show RSS is flat in length)")
    ns = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'source':>8}  {'command':<13} {'wall s':>8} {'x realtime':>10} {'CPU s':>8} "
          f"{'tree RSS MB':>11} {'max proc MB':>11}")
    for minutes in [ns.minutes, *ns.also]:
        res = run(minutes)
        for name, (wall, peak, single, cpu) in res.items():
            print(f"{minutes:>6g}m  {name:<13} {wall:8.1f} {minutes * 60 / wall:10.2f} {cpu:8.1f} "
                  f"{peak / 2**20:11.0f} {single / 2**20:11.0f}", flush=True)
        sori, plain = res["sori"], res["plain ffmpeg"]
        print(f"{minutes:>6g}m  sori overhead over plain ffmpeg: {(sori[0] / plain[0] - 1) * 100:+.1f}% "
              f"wall, {(sori[3] / plain[3] - 1) * 100:+.1f}% CPU, tree RSS "
              f"{sori[1] / max(1, plain[1]):.2f}x (load average now "
              f"{os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
