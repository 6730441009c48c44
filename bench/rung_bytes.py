"""Bytes per hour of listening, rung by rung, measured on a real packaged spoken-word asset.

    .venv/bin/python -m bench.rung_bytes [--minutes 10] [--cost] [--json]

Makes `--minutes` of espeak-ng speech (bench/speech.py, cached under bench/out/), packages
it with the default configuration (the AAC ladder and the Opus data-saver rung of issue 14)
into a temporary local store, then reads every rendition's media segments back: bytes per
hour = sum of segment bytes / media duration * 3600 (the init segment, fetched once, is
shown apart). The duration is the rendition's own, from its fragments' sample durations.

With `--cost`, the same input is packaged a second time with `packager.data_saver` off, and
both wall times are printed (what the extra rung costs a packaging run on this machine).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.speech import speech_wav
from manifests import boxes, layout
from packager.pipeline import package
from settings import PackagerConfig
from storage.local import LocalStore

MB = 1_000_000


def measure_rendition(rdir: Path) -> dict[str, Any]:
    """Segment bytes, init bytes and media seconds of one packaged rendition directory."""
    init = (rdir / layout.INIT).read_bytes()
    track = boxes.parse_init(init)
    seg_bytes = 0
    ticks = 0
    count = 0
    for path in sorted(rdir.glob("seg_*.m4s")):
        data = path.read_bytes()
        seg_bytes += len(data)
        ticks += sum(f.duration for f in boxes.parse_fragments(data, track.defaults))
        count += 1
    seconds = ticks / track.timescale
    return {"codecs": track.codecs, "sample_rate": track.sample_rate, "channels": track.channels,
            "segments": count, "segment_bytes": seg_bytes, "init_bytes": len(init),
            "seconds": seconds, "kbps": 8 * seg_bytes / seconds / 1000,
            "bytes_per_hour": seg_bytes / seconds * 3600}


async def run(minutes: float, cost: bool) -> dict[str, Any]:
    src = speech_wav(minutes)
    cfg = PackagerConfig()
    out: dict[str, Any] = {"source": str(src), "minutes": minutes,
                           "data_saver_bitrate": cfg.data_saver_bitrate}
    with tempfile.TemporaryDirectory(prefix="rung-bytes-") as tmp:
        root = Path(tmp)
        started = time.monotonic()
        record = await package(src, LocalStore(root / "media"), cfg, asset_id="bench")
        out["wall_with_saver"] = time.monotonic() - started
        vdir = root / "media" / "bench" / layout.version_dir(record["version"])
        out["rungs"] = {r["id"]: measure_rendition(vdir / r["id"]) for r in record["renditions"]}
        if cost:
            started = time.monotonic()
            await package(src, LocalStore(root / "plain"),
                          dataclasses.replace(cfg, data_saver=False), asset_id="bench")
            out["wall_without_saver"] = time.monotonic() - started
    return out


def table(result: dict[str, Any]) -> str:
    rungs = result["rungs"]
    ref = rungs.get("medium", next(iter(rungs.values())))["bytes_per_hour"]
    lines = [f"{result['minutes']:g} min of espeak-ng speech ({result['source']}), default ladder",
             "",
             f"{'rung':<8} {'codecs':<10} {'rate':>6} {'ch':>2} {'kb/s':>6} {'MB/hour':>8} "
             f"{'vs medium':>9} {'init B':>6}"]
    for rid, r in rungs.items():
        lines.append(f"{rid:<8} {r['codecs']:<10} {r['sample_rate']:>6} {r['channels']:>2} "
                     f"{r['kbps']:>6.1f} {r['bytes_per_hour'] / MB:>8.2f} "
                     f"{r['bytes_per_hour'] / ref:>9.2f} {r['init_bytes']:>6}")
    lines.append("")
    lines.append("MB/hour = sum of media segment bytes / media seconds * 3600 / 10^6 "
                 "(init segment apart)")
    if "wall_without_saver" in result:
        lines.append(f"packaging wall time: {result['wall_with_saver']:.1f} s with the saver rung, "
                     f"{result['wall_without_saver']:.1f} s without")
    else:
        lines.append(f"packaging wall time: {result['wall_with_saver']:.1f} s")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--cost", action="store_true", help="also package without the saver rung")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = asyncio.run(run(args.minutes, args.cost))
    print(json.dumps(result, indent=2) if args.json else table(result))


if __name__ == "__main__":
    main()
