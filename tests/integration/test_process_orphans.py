"""A process that runs ffmpeg (an origin, a `sori worker`) killed with SIGKILL leaves
none of its children running: packager.process starts them with PR_SET_PDEATHSIG."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = """
import asyncio, sys
from packager import process
async def main():
    await process.run(["sleep", "60"], stdin=None)
print("started", flush=True)
asyncio.run(main())
"""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_children_die_with_a_killed_parent(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE,
                              cwd=Path(__file__).resolve().parents[2])
    assert parent.stdout is not None and parent.stdout.readline().strip() == b"started"
    deadline = time.monotonic() + 10
    children: list[int] = []
    while not children and time.monotonic() < deadline:
        out = subprocess.run(["pgrep", "-P", str(parent.pid)], capture_output=True, text=True)
        children = [int(p) for p in out.stdout.split()]
        time.sleep(0.05)
    assert children, "the child did not start"
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 5
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(c) for c in children), "a child outlived its killed parent"
