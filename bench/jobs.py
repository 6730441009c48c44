"""Packaging jobs on the queue: jobs finished per minute with one and with two `sori worker`s.

    .venv/bin/python -m bench.jobs [--jobs 20] [--seconds 30] [--json]

The same spoken-word WAV (bench/speech.py) is uploaded `--jobs` times, under as many
asset ids, to one `sori serve` with `[jobs] backend = "redis"` (a redis-server of the
bench's own on a free loopback port, a local store in a temporary directory); the clock
runs from the first upload to the last job done. Workers run one job at a time each
(`[jobs] concurrency = 1`) with the default packager settings (one encoder per core).

Reference, measured in the same run: the same file packaged by plain `sori package`
processes run one after another (what a user without a queue would do), on its own
store. On a two-core machine the second worker cannot double the rate: each job already
runs one encoder per core.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import speech

REPO = Path(__file__).resolve().parents[1]
SORI = Path(sys.executable).parent / "sori"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SORI_")}
    return {**env, "SORI_STORAGE_BACKEND": "local", "SORI_STORAGE_ROOT": str(root),
            "SORI_ORIGIN_ACCESS_LOG": "false", **extra}


@contextlib.contextmanager
def _process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=REPO, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _wait_url(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=1).close()
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def _request(url: str, data: bytes | None = None, method: str = "GET") -> Any:
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "audio/wav"} if data else {})
    with urllib.request.urlopen(req, timeout=60) as res:
        return json.load(res)


def queued(wav: Path, jobs: int, workers: int, work: Path) -> dict[str, Any]:
    """Jobs per minute through the queue with `workers` worker processes."""
    port, redis_port = _free_port(), _free_port()
    run = work / f"queue-{workers}"
    run.mkdir()
    redis_log = run / "redis.log"
    redis = shutil.which("redis-server")
    if redis is None:
        raise SystemExit("redis-server is missing: apt-get install redis-server "
                         "(`make install-test` does)")
    env = _env(run / "media", SORI_JOBS_BACKEND="redis",
               SORI_JOBS_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
               SORI_ORIGIN_UPLOAD_DIR=str(run / "uploads"))
    body = wav.read_bytes()
    with contextlib.ExitStack() as stack:
        r = stack.enter_context(_process(
            [redis, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(run)], env, redis_log))
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", redis_port), timeout=1):
                break
            if time.monotonic() > deadline or r.poll() is not None:
                raise RuntimeError(redis_log.read_text())
            time.sleep(0.05)
        origin_log = run / "serve.log"
        origin = stack.enter_context(_process(
            [str(SORI), "serve", "--port", str(port)], env, origin_log))
        base = f"http://127.0.0.1:{port}"
        _wait_url(f"{base}/healthz", origin, origin_log)
        for i in range(workers):
            stack.enter_context(_process([str(SORI), "worker"], env, run / f"worker{i}.log"))
        time.sleep(1.0)  # the workers connect
        t0 = time.monotonic()
        ids = [_request(f"{base}/v1/assets?id=bench-{i}", body, "POST")["job"]["id"]
               for i in range(jobs)]
        pending = set(ids)
        failed = 0
        while pending:
            for job_id in list(pending):
                state = _request(f"{base}/v1/jobs/{job_id}")["state"]
                if state in ("done", "failed"):
                    pending.discard(job_id)
                    failed += state == "failed"
            time.sleep(0.1)
        wall = time.monotonic() - t0
    return {"workers": workers, "jobs": jobs, "failed": failed, "wall_s": round(wall, 2),
            "jobs_per_min": round(jobs / wall * 60, 1)}


def sequential(wav: Path, jobs: int, work: Path) -> dict[str, Any]:
    """Jobs per minute of plain `sori package` processes, one after another."""
    env = _env(work / "sequential")
    t0 = time.monotonic()
    for i in range(jobs):
        subprocess.run([str(SORI), "package", str(wav), "--id", f"bench-{i}"], env=env,
                       check=True, capture_output=True, cwd=REPO)
    wall = time.monotonic() - t0
    return {"jobs": jobs, "wall_s": round(wall, 2), "jobs_per_min": round(jobs / wall * 60, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each input")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    wav = speech.speech_wav(args.seconds / 60)
    with tempfile.TemporaryDirectory(prefix="sori-bench-jobs-") as tmp:
        work = Path(tmp)
        reference = sequential(wav, args.jobs, work)
        one = queued(wav, args.jobs, 1, work)
        two = queued(wav, args.jobs, 2, work)
    result = {"input_s": args.seconds, "cores": os.cpu_count(), "sequential": reference,
              "one_worker": one, "two_workers": two,
              "two_vs_one": round(two["jobs_per_min"] / one["jobs_per_min"], 2)}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.jobs} jobs of {args.seconds:.0f} s speech, {os.cpu_count()} cores")
    print(f"  sori package, one after another : {reference['jobs_per_min']:6.1f} jobs/min "
          f"({reference['wall_s']} s)")
    for r in (one, two):
        print(f"  queue, {r['workers']} worker(s)              : {r['jobs_per_min']:6.1f} "
              f"jobs/min ({r['wall_s']} s, {r['failed']} failed)")
    print(f"  two workers / one worker        : {result['two_vs_one']:.2f}x")


if __name__ == "__main__":
    main()
