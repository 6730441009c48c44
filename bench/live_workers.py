"""Live wake-up delay across workers: a part landing on the owner → the playlist of a
blocking reload delivered by another worker, beside the same delay asked of the owner.

    .venv/bin/python -m bench.live_workers [--seconds 40] [--clients 3] [--json]

`sori serve` with two workers on a temporary local store; one real-time stream (PCM
pushed in 200 ms chunks at the audio's pace). Every worker also listens on its own
internal address (origin.live.peers), which is how this bench asks one worker in
particular: the owner's address comes from the stream's `.live/{id}` marker, the other
worker's from the log. In each round, the moment a part lands, `--clients` keep-alive
connections to the owner and as many to the other worker ask for the next part with a
blocking reload (`_HLS_msn`/`_HLS_part`), so all are held when it lands. Per round the
part's landing is the first answer of all (an owner's, in practice); the figure is each
answer's arrival after it. Target (issue 12): p99 <= 20 ms through the other worker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
SORI = REPO / ".venv" / "bin" / "sori"
RATE = 22050


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))] if s else float("nan")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tone(seconds: float) -> bytes:
    """Speech-like PCM (a warbling tone with pauses), s16le mono at RATE."""
    import numpy as np

    t = np.arange(int(seconds * RATE)) / RATE
    f = 180 + 60 * np.sin(2 * np.pi * 3 * t)
    wave = 0.3 * np.sin(2 * np.pi * np.cumsum(f) / RATE) * (np.sin(2 * np.pi * 0.4 * t) > -0.8)
    return (wave * 32767).astype("<i2").tobytes()


async def push(session: aiohttp.ClientSession, base: str, sid: str, pcm: bytes) -> None:
    chunk = RATE * 2 // 5
    t0 = time.monotonic()
    for seq, at in enumerate(range(0, len(pcm), chunk)):
        await asyncio.sleep(max(0.0, t0 + at / (RATE * 2) - 0.3 - time.monotonic()))
        async with session.post(f"{base}/v1/live/{sid}/chunks", params={"seq": str(seq)},
                                data=pcm[at:at + chunk]) as r:
            assert r.status == 200, await r.text()
    async with session.post(f"{base}/v1/live/{sid}/end") as r:
        assert r.status == 200, await r.text()


async def client(base: str, path: str, rounds: asyncio.Queue[tuple[int, int] | None],
                 out: list[tuple[int, float]], ready: asyncio.Event) -> None:
    async with aiohttp.ClientSession(base_url=base) as session:
        async with session.get(path) as r:  # open the connection
            await r.read()
        ready.set()
        while (want := await rounds.get()) is not None:
            msn, part = want
            async with session.get(path, params={"_HLS_msn": str(msn),
                                                 "_HLS_part": str(part)}) as r:
                body = await r.read()
                arrived = time.perf_counter()
            if r.status == 200 and b"#EXT-X-ENDLIST" not in body:
                out.append((msn * 1000 + part, arrived))


def next_part(text: str) -> tuple[int, int]:
    seq = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))  # type: ignore[union-attr]
    lines = text.splitlines()
    segments = sum(1 for ln in lines if ln.startswith("#EXTINF"))
    trailing = 0
    for ln in reversed(lines):
        if ln.startswith("#EXTINF"):
            break
        if ln.startswith("#EXT-X-PART:"):
            trailing += 1
    return seq + segments, trailing


async def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SORI_")}
    env.update(SORI_STORAGE_BACKEND="local", SORI_STORAGE_ROOT=str(work / "media"),
               SORI_ORIGIN_UPLOAD_DIR=str(work / "uploads"), SORI_ORIGIN_WORKERS="2",
               SORI_ORIGIN_ACCESS_LOG="false")
    log_path = work / "serve.log"
    with log_path.open("wb") as logf:
        proc = subprocess.Popen([str(SORI), "serve", "--port", str(port)], env=env,
                                stdout=logf, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        deadline = time.monotonic() + 20
        while log_path.read_text().count("(peers: ") < 2:
            assert time.monotonic() < deadline and proc.poll() is None, log_path.read_text()
            await asyncio.sleep(0.1)
        peers = re.findall(r"\(peers: ([\d.]+:\d+)\)", log_path.read_text())
        base = f"http://127.0.0.1:{port}"
        sid = f"bench-{os.getpid()}"
        async with aiohttp.ClientSession() as s:
            async with s.post(f"{base}/v1/live", json={"id": sid, "format": {
                    "codec": "pcm_s16le", "sample_rate": RATE, "channels": 1}}) as r:
                rec = await r.json()
                assert r.status == 201, rec
            marker = json.loads((work / "media" / ".live" / sid).read_text())
            owner = marker["url"]
            other = next(f"http://{p}" for p in peers if f"http://{p}" != owner)
            path = f"/assets/{sid}/v/{rec['version']}/low/index.m3u8"
            producer = asyncio.create_task(push(s, base, sid, tone(args.seconds)))
            queues: dict[str, list[asyncio.Queue[tuple[int, int] | None]]] = {}
            results: dict[str, list[tuple[int, float]]] = {"owner": [], "other": []}
            tasks = []
            for name, url in (("owner", owner), ("other", other)):
                queues[name] = []
                for _ in range(args.clients):
                    q: asyncio.Queue[tuple[int, int] | None] = asyncio.Queue()
                    ready = asyncio.Event()
                    queues[name].append(q)
                    tasks.append(asyncio.create_task(client(url, path, q, results[name],
                                                            ready)))
                    await ready.wait()
            # follow the stream on the owner: each round parks everyone on the next part
            async with aiohttp.ClientSession(base_url=owner) as follow:
                async with follow.get(path) as r:
                    text = await r.text()
                want = next_part(text)
                while not producer.done():
                    for qs in queues.values():
                        for q in qs:
                            q.put_nowait(want)
                    async with follow.get(path, params={"_HLS_msn": str(want[0]),
                                                        "_HLS_part": str(want[1])}) as r:
                        text = await r.text()
                    if "#EXT-X-ENDLIST" in text:
                        break
                    want = next_part(text)
                    await asyncio.sleep(0.02)  # let every client answer and re-park
            await producer
            for qs in queues.values():
                for q in qs:
                    q.put_nowait(None)
            await asyncio.gather(*tasks)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    landed: dict[int, float] = {}
    for name in results:
        for key, t in results[name]:
            landed[key] = min(landed.get(key, t), t)
    delays = {name: [1000 * (t - landed[key]) for key, t in results[name]]
              for name in results}
    out: dict[str, Any] = {"rounds": len(landed), "clients": args.clients}
    for name, values in delays.items():
        out[name] = {"n": len(values), "p50_ms": round(pct(values, 50), 2),
                     "p99_ms": round(pct(values, 99), 2), "max_ms": round(max(values), 2)}
    out["target_p99_ms"] = 20.0
    out["verdict"] = "met" if out["other"]["p99_ms"] <= 20.0 else "NOT met"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--clients", type=int, default=3, help="connections per worker")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sori-bench-workers-") as tmp:
        res = asyncio.run(run(args, Path(tmp)))
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"live wake-up across workers: {res['rounds']} parts, {res['clients']} "
          "connections per worker (part landed -> blocking-reload playlist delivered)")
    for name, label in (("owner", "asked of the owner"), ("other", "asked of another worker")):
        r = res[name]
        print(f"  {label:26} p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms  "
              f"max {r['max_ms']:6.2f} ms  (n={r['n']})")
    print(f"  target p99 <= 20 ms through another worker: {res['verdict']}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
