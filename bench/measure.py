"""Wall time and memory of a command and everything it starts.

`run_measured(cmd)` runs `cmd` under a small wrapper (`python -m bench.measure`) in a
new session, so the wrapper, the command and all its children share one process
group. While it runs, a sampler thread reads /proc every 50 ms and sums the RSS of
every process in that group or descended from the wrapper: the peak of that sum is the
memory the whole tree held at once. The wrapper itself reports the wall time of the
command and `getrusage(RUSAGE_CHILDREN).ru_maxrss`, the largest RSS any single
descendant reached (the kernel folds in grandchildren that their parents waited for).

`TreeSampler` is usable alone, for example to watch a server's memory during a load
test.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, pgrp) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm may contain spaces and parentheses: fields start after the last ')'.
    rest = data[data.rfind(b")") + 2:].split()
    return int(rest[1]), int(rest[2])


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


CLK_TCK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used, 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return 0.0
    rest = data[data.rfind(b")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def tree_cpu(root: int, classify: Callable[[int], str]) -> dict[int, tuple[str, float]]:
    """pid -> (label, CPU seconds used so far) over a process tree right now."""
    return {p: (classify(p), process_cpu(p)) for p in tree_pids(root)}


def system_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, summed over cores."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return (total - idle) / CLK_TCK, total / CLK_TCK


def tree_pids(root: int) -> list[int]:
    """`root`, every process in its process group, and every descendant of it."""
    parents: dict[int, int] = {}
    members: set[int] = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        st = _stat(pid)
        if st is None:
            continue
        parents[pid] = st[0]
        if st[1] == root:
            members.add(pid)
    members.add(root)
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    stack = list(members)
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in members:
                members.add(child)
                stack.append(child)
    return sorted(members)


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().strip().decode("utf-8", "replace")
    except OSError:
        return "?"


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


Classifier = Callable[[int, str], str]  # (pid, command name) -> label


def tree_rss(root: int, classify: Classifier | None = None) -> tuple[int, Counter[str]]:
    """(sum of RSS over the tree in bytes, process count by label) right now. The label
    is the command name unless `classify` says otherwise."""
    pids = tree_pids(root)
    labels: Counter[str] = Counter()
    for p in pids:
        name = _comm(p)
        labels[classify(p, name) if classify else name] += 1
    return sum(_rss_bytes(p) for p in pids), labels


class TreeSampler:
    """Samples the summed RSS of a process tree every `interval` seconds in a thread."""

    def __init__(self, root: int, interval: float = 0.05,
                 classify: Classifier | None = None) -> None:
        self.root = root
        self.classify = classify
        self.interval = interval
        self.samples: list[tuple[float, int]] = []  # (monotonic time, bytes)
        self.commands: list[Counter[str]] = []  # process names at each sample
        self.peak = 0
        self.peak_procs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def time_with(self, command: str) -> dict[int, float]:
        """Seconds spent with 0, 1, 2, ... processes labelled `command` in the tree."""
        out: dict[int, float] = {}
        for (t0, _), (t1, _), names in zip(self.samples, self.samples[1:], self.commands,
                                           strict=False):
            n = names.get(command, 0)
            out[n] = out.get(n, 0.0) + (t1 - t0)
        return out

    def phases(self, labels: Sequence[str]) -> dict[str, float]:
        """Seconds spent in each combination of the given labels running (e.g.
        "encode x2"), in order of first appearance; "-" when none of them runs."""
        out: dict[str, float] = {}
        for (t0, _), (t1, _), names in zip(self.samples, self.samples[1:], self.commands,
                                           strict=False):
            sig = " + ".join(f"{lab} x{names[lab]}" for lab in labels if names.get(lab)) or "-"
            out[sig] = out.get(sig, 0.0) + (t1 - t0)
        return out

    def rss_at(self, fraction: float) -> int:
        """Summed RSS of the sample at `fraction` (0..1) of the run."""
        if not self.samples:
            return 0
        return self.samples[min(len(self.samples) - 1, int(fraction * len(self.samples)))][1]

    def _loop(self) -> None:
        while not self._stop.is_set():
            total, names = tree_rss(self.root, self.classify)
            self.samples.append((time.monotonic(), total))
            self.commands.append(names)
            if total > self.peak:
                self.peak = total
            self.peak_procs = max(self.peak_procs, sum(names.values()))
            self._stop.wait(self.interval)


@dataclass
class Measured:
    cmd: list[str]
    returncode: int
    wall: float  # seconds the command ran (measured by the wrapper)
    peak_tree_rss: int  # bytes: max over time of the summed RSS of the tree
    max_single_rss: int  # bytes: the largest RSS of any one descendant
    peak_procs: int
    cpu: float = 0.0  # user + system seconds of all descendants
    machine_busy: float = 0.0  # CPU seconds the whole machine was busy during the run
    stdout: str = ""
    stderr: str = ""
    sampler: TreeSampler | None = field(default=None, repr=False)

    @property
    def other_load(self) -> float:
        """Cores kept busy by other processes on the machine during the run (noise)."""
        return max(0.0, self.machine_busy - self.cpu) / self.wall if self.wall > 0 else 0.0

    @property
    def peak_tree_mb(self) -> float:
        return self.peak_tree_rss / MB

    @property
    def max_single_mb(self) -> float:
        return self.max_single_rss / MB


def run_measured(cmd: Sequence[str], env: Mapping[str, str] | None = None,
                 cwd: str | Path | None = None, interval: float = 0.05,
                 classify: Classifier | None = None) -> Measured:
    """Run `cmd` to completion and measure it (see the module docstring)."""
    with tempfile.NamedTemporaryFile(prefix="measure-", suffix=".json", delete=False) as f:
        report = Path(f.name)
    try:
        wrapper = [sys.executable, "-m", "bench.measure", str(report), "--", *cmd]
        busy0, _ = system_cpu()
        # the wrapper imports bench.measure from this checkout
        proc = subprocess.Popen(wrapper, env=_with_pythonpath(env), cwd=cwd,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        with TreeSampler(proc.pid, interval, classify) as sampler:
            out, err = proc.communicate()
        busy1, _ = system_cpu()
        data = json.loads(report.read_text() or "{}")
    finally:
        report.unlink(missing_ok=True)
    return Measured(list(cmd), int(data.get("returncode", proc.returncode)),
                    float(data.get("wall", 0.0)), sampler.peak,
                    int(data.get("maxrss_kb", 0)) * 1024, sampler.peak_procs,
                    float(data.get("cpu", 0.0)), busy1 - busy0, out, err, sampler)


def _with_pythonpath(env: Mapping[str, str] | None) -> dict[str, str]:
    root = str(Path(__file__).resolve().parent.parent)
    base = dict(env if env is not None else os.environ)
    paths = [root, *filter(None, base.get("PYTHONPATH", "").split(os.pathsep))]
    base["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return base


def _wrapper_main(argv: list[str]) -> int:
    """`python -m bench.measure REPORT -- CMD...`: run CMD, write wall time and the
    children's max RSS to REPORT as JSON, exit with CMD's status."""
    report, sep, *cmd = argv
    if sep != "--" or not cmd:
        print("usage: python -m bench.measure REPORT -- CMD...", file=sys.stderr)
        return 2
    start = time.perf_counter()
    returncode = subprocess.call(cmd)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    Path(report).write_text(json.dumps({"returncode": returncode, "wall": wall,
                                        "maxrss_kb": usage.ru_maxrss,
                                        "cpu": usage.ru_utime + usage.ru_stime}))
    return returncode


if __name__ == "__main__":
    sys.exit(_wrapper_main(sys.argv[1:]))
