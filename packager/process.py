"""Running ffmpeg and ffprobe as asyncio subprocesses with argument lists (never a shell)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from packager.errors import PackagerError

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"


def require_tools() -> None:
    for tool in (FFMPEG, FFPROBE):
        if shutil.which(tool) is None:
            raise PackagerError(f"{tool} is not installed (make demo installs it)")


async def _drain_progress(stream: asyncio.StreamReader, on_time: Callable[[float], None]) -> None:
    """Read `-progress pipe:1` key=value lines and report out_time in seconds."""
    while line := await stream.readline():
        key, _, value = line.decode("ascii", "replace").strip().partition("=")
        if key == "out_time_us" and value.lstrip("-").isdigit():
            on_time(max(0, int(value)) / 1e6)


_SETPRIV = shutil.which("setpriv")  # util-linux: on every Debian machine


def die_with_parent(args: Sequence[str]) -> list[str]:
    """`args` run so that the child gets SIGKILL when the process that started it dies,
    however it dies (Linux PR_SET_PDEATHSIG, through util-linux's setpriv): an origin or
    a `sori worker` killed with SIGKILL leaves no ffmpeg encoding on for nobody."""
    if _SETPRIV is None or not sys.platform.startswith("linux"):
        return list(args)
    return [_SETPRIV, "--pdeathsig", "KILL", "--", *args]


async def run(args: Sequence[str], *, on_time: Callable[[float], None] | None = None,
              stdin: int | None = asyncio.subprocess.DEVNULL) -> tuple[int, str]:
    """Run a command; return (exit code, stderr text). Killed if the caller is cancelled.

    With `on_time`, ffmpeg must have been given `-progress pipe:1` and its stdout is
    parsed for progress; otherwise stdout is discarded.
    """
    proc = await asyncio.create_subprocess_exec(
        *die_with_parent(args), stdin=stdin,
        stdout=asyncio.subprocess.PIPE if on_time else asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        if on_time is not None:
            assert proc.stdout is not None
            err, _ = await asyncio.gather(proc.stderr.read(),
                                          _drain_progress(proc.stdout, on_time))
        else:
            err = await proc.stderr.read()
        code = await proc.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(Exception):
            await asyncio.shield(proc.wait())
        raise
    return code, err.decode("utf-8", "replace")


async def run_json(args: Sequence[str]) -> tuple[int, bytes, str]:
    """Run a command that prints JSON on stdout (ffprobe); return (code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *die_with_parent(args), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await proc.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise
    return proc.returncode or 0, out, err.decode("utf-8", "replace")


async def run_all(*aws: Awaitable[Any]) -> list[Any]:
    """Run awaitables together; if one fails (or the caller is cancelled), cancel the others
    and wait for them, so that no ffmpeg outlives the failure, then re-raise."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
