"""Client load for the live benchmark, run in processes of its own so that none of it
runs in the origin's process (or the benchmark's):

    python -m bench.live_load push   < JOB.json     real-time producers, one per stream
    python -m bench.live_load follow < JOB.json     one LL-HLS follower per stream

push: {"base", "t0" (epoch seconds), "seconds", "streams": [{"id", "offset", "kind"}]}.
Stream i posts its schedule (bench.live_media: 200 ms chunks at the pace of the audio)
from t0 + offset, chunk n with ?seq=n, one request at a time on a connection of its own,
and never ends the stream (the benchmark decides what happens after); a pusher held back
more than GRACE seconds past its schedule gives up. Prints one JSON line: per stream the
chunks sent and left unsent, how late the last send was against its schedule, the worst
lateness, the p99 and max response times, and errors.

follow: {"t0", "streams": [{"id", "url", "offset", "until"}]}. From t0 + offset - 0.3 s,
stream i gets its media playlist (a plain GET, which the origin holds until the first part
exists), then asks, with a blocking reload (_HLS_msn/_HLS_part), for the part after the
last one it saw, until t0 + until. Prints one JSON line: per stream the arrival time
(epoch seconds) of every response with the last part it lists, as [t, msn, part].

Also here, for the benchmark's own process: `TreeStats`, the CPU and RSS of a process
and its descendants (the origin and its ffmpeg encoders) sampled from /proc.
"""

from __future__ import annotations

import asyncio
import json
import re
import resource
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench import live_media
from bench.measure import CLK_TCK, PAGE, tree_pids

# --- pushers ---------------------------------------------------------------------------

GRACE = 5.0  # seconds a pusher may run past its schedule before it gives up


async def _sleep_until(epoch: float) -> None:
    delay = epoch - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered) + 0.5)) - 1))]


async def _push_one(session: Any, base: str, stream: dict[str, Any], t0: float,
                    seconds: float, said: list[bytes]) -> dict[str, Any]:
    rotated = said[stream.get("rotate", 0) % len(said):] + said[:stream.get("rotate", 0)
                                                               % len(said)]
    plan = live_media.schedule(stream.get("kind", "realtime"), rotated, seconds)
    start = t0 + stream["offset"]
    late: list[float] = []
    took: list[float] = []
    errors: list[str] = []
    first = None
    url = f"{base}/v1/live/{stream['id']}/chunks"
    give_up = start + seconds + GRACE
    unsent = 0
    for seq, (at, chunk) in enumerate(plan):
        await _sleep_until(start + at)
        sent = time.time()
        if sent > give_up:  # the origin holds the producer back this far: stop
            unsent = len(plan) - seq
            break
        if first is None:
            first = sent
        late.append(sent - (start + at))
        try:
            async with session.post(url, params={"seq": str(seq)}, data=chunk,
                                    headers={"Content-Type": "application/octet-stream"}) as r:
                await r.read()
                if r.status != 200:
                    errors.append(f"seq {seq}: {r.status}")
        except Exception as e:  # noqa: BLE001 - reported, the run goes on
            errors.append(f"seq {seq}: {type(e).__name__}: {e}")
        took.append(time.time() - sent)
    return {"id": stream["id"], "chunks": len(plan), "unsent": unsent, "first": first,
            "late_last": late[-1] if late else 0.0, "late_max": max(late, default=0.0),
            "resp_p99": _pct(took, 0.99), "resp_max": max(took, default=0.0),
            "errors": errors[:5], "error_count": len(errors)}


async def push(job: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    said = live_media.sentences()
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        results = await asyncio.gather(*(
            _push_one(session, job["base"], s, job["t0"], job["seconds"], said)
            for s in job["streams"]))
    return {"streams": results}


# --- followers -------------------------------------------------------------------------

_PART_URI = re.compile(r'#EXT-X-PART:[^\n]*URI="[^"]*?seg_(\d+)\.(\d+)\.m4s"')


def last_part(text: str) -> tuple[int, int, bool, bool] | None:
    """(msn, part index, whether that segment is complete, ENDLIST) of the last part a
    playlist lists, or None if it lists none."""
    last = None
    for m in _PART_URI.finditer(text):
        last = m
    if last is None:
        return None
    complete = "#EXTINF" in text[last.end():]
    return int(last.group(1)), int(last.group(2)), complete, "#EXT-X-ENDLIST" in text


async def _follow_one(session: Any, stream: dict[str, Any], t0: float) -> dict[str, Any]:
    await _sleep_until(t0 + stream["offset"] - 0.3)
    until = t0 + stream["until"]
    arrivals: list[tuple[float, int, int]] = []
    errors: list[str] = []
    query: dict[str, str] = {}
    while time.time() < until:
        try:
            async with session.get(stream["url"], params=query) as r:
                text = await r.text()
                t = time.time()
                status = r.status
        except Exception as e:  # noqa: BLE001
            errors.append(f"{type(e).__name__}: {e}")
            await asyncio.sleep(0.05)
            continue
        if status != 200:
            errors.append(f"{status} for {query or 'plain GET'}")
            await asyncio.sleep(0.05)
            continue
        found = last_part(text)
        if found is None:
            query = {}
            continue
        msn, k, complete, ended = found
        arrivals.append((t, msn, k))
        if ended:
            break
        nxt = (msn + 1, 0) if complete else (msn, k + 1)
        query = {"_HLS_msn": str(nxt[0]), "_HLS_part": str(nxt[1])}
    return {"id": stream["id"], "arrivals": arrivals, "errors": errors[:5],
            "error_count": len(errors)}


async def follow(job: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        results = await asyncio.gather(*(_follow_one(session, s, job["t0"])
                                         for s in job["streams"]))
    return {"streams": results}


# --- the origin's CPU and memory, from /proc ---------------------------------------------


def _stat_fields(pid: int) -> tuple[int, str] | None:
    """(utime + stime in ticks, command name) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    name = data[data.find(b"(") + 1:data.rfind(b")")].decode("utf-8", "replace")
    rest = data[data.rfind(b")") + 2:].split()
    return int(rest[11]) + int(rest[12]), name


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def pss(pid: int) -> int:
    """Proportional set size of one process (shared pages divided among their users),
    bytes."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def vm_hwm(pid: int) -> int:
    """Peak RSS of one process (VmHWM), bytes."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class TreeStats:
    """Samples a process tree every `interval` s: CPU seconds of the root process and of
    its descendants (cumulative, from each process's first sighting), summed RSS, and
    (every fourth sample) summed PSS."""

    root: int
    interval: float = 0.25
    samples: list[tuple[float, float, float, int, int]] = field(default_factory=list)
    # (epoch, root cpu s, descendants cpu s, root rss, descendants rss)
    peak_rss: int = 0
    peak_pss: int = 0  # summed PSS, sampled once a second
    peak_children: int = 0
    _seen: dict[int, int] = field(default_factory=dict)  # pid -> ticks at the last sample

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tree-stats", daemon=True)

    def __enter__(self) -> TreeStats:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        kid_ticks = 0  # ticks of descendants seen so far (kept when one exits)
        n = 0
        while not self._stop.is_set():
            n += 1
            total_pss = 0
            root_ticks = 0
            root_rss = kids_rss = 0
            kids = 0
            for pid in tree_pids(self.root):
                st = _stat_fields(pid)
                if st is None:
                    continue
                ticks, _name = st
                if n % 4 == 0:
                    total_pss += pss(pid)
                if pid == self.root:
                    root_ticks = ticks
                    root_rss = _rss(pid)
                    continue
                kids += 1
                kids_rss += _rss(pid)
                prev = self._seen.get(pid)
                if prev is None:
                    prev = ticks
                kid_ticks += ticks - prev
                self._seen[pid] = ticks
            self.samples.append((time.time(), root_ticks / CLK_TCK, kid_ticks / CLK_TCK,
                                 root_rss, kids_rss))
            self.peak_rss = max(self.peak_rss, root_rss + kids_rss)
            self.peak_children = max(self.peak_children, kids)
            self.peak_pss = max(self.peak_pss, total_pss)
            self._stop.wait(self.interval)

    def cpu_between(self, t0: float, t1: float) -> tuple[float, float, float]:
        """(root cores, descendants' cores, seconds) used between epoch t0 and t1."""
        inside = [s for s in self.samples if t0 <= s[0] <= t1]
        if len(inside) < 2:
            return 0.0, 0.0, 0.0
        a, b = inside[0], inside[-1]
        span = b[0] - a[0]
        return (b[1] - a[1]) / span, (b[2] - a[2]) / span, span


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("push", "follow"):
        print("usage: python -m bench.live_load push|follow < JOB.json", file=sys.stderr)
        return 2
    job = json.loads(sys.stdin.read())
    work = push(job) if argv[0] == "push" else follow(job)
    try:
        import uvloop

        result = uvloop.run(work)
    except ImportError:
        result = asyncio.run(work)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu"] = usage.ru_utime + usage.ru_stime
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
