"""origin.packaging.job_board: job files and asset claims shared by an origin's worker processes
(real files in a temporary directory; other processes are real processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from origin.packaging.job_board import STOPPED, JobBoard

JOB = "0123456789abcdef"
OTHER = "fedcba9876543210"


def _job(state: str = "running", job_id: str = JOB) -> dict[str, object]:
    return {"id": job_id, "asset": "talk", "state": state, "progress": 0.5, "phase": "audio",
            "error": None, "created": "2026-11-22T12:00:00Z", "started": None, "finished": None}


@pytest.fixture
def gone_pid() -> int:
    """The pid of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def live_pid() -> Iterator[int]:
    """The pid of another process that is running."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def _write_as(board: JobBoard, pid: int, job: dict[str, object], version: int = 1) -> None:
    board.root.mkdir(parents=True, exist_ok=True)
    (board.root / f"{job['id']}.json").write_text(
        json.dumps({"job": job, "version": version, "owner": pid}))


def _claim_as(board: JobBoard, pid: int, asset: str, job_id: str) -> None:
    board.claims.mkdir(parents=True, exist_ok=True)
    (board.claims / asset).write_text(json.dumps({"job": job_id, "owner": pid}))


def test_a_written_job_reads_back(tmp_path: Path) -> None:
    board = JobBoard(tmp_path / "jobs")
    board.write(JOB, _job(), 3)
    snap = board.read(JOB)
    assert snap is not None
    assert snap.job == _job() and snap.version == 3
    assert snap.owner == os.getpid() and snap.owner_alive
    assert not list(board.root.glob(".*.tmp"))  # written through a temporary file, renamed


@pytest.mark.parametrize("job_id", ["", "../etc/passwd", "0123456789ABCDEF", "0123",
                                    "0123456789abcdef0", "0123456789abcde/", "..", "a" * 300])
def test_only_job_ids_name_files(tmp_path: Path, job_id: str) -> None:
    board = JobBoard(tmp_path / "jobs")
    assert board.read(job_id) is None
    with pytest.raises(ValueError):
        board.write(job_id, _job(), 1)
    board.remove(job_id)  # nothing to do, no error
    assert not (tmp_path / "jobs").exists()


def test_unknown_and_unreadable_jobs_are_none(tmp_path: Path) -> None:
    board = JobBoard(tmp_path / "jobs")
    assert board.read(JOB) is None
    board.root.mkdir(parents=True)
    for body in ("", "{", "[]", '{"job": 1, "version": 1, "owner": 1}', '{"job": {}}'):
        (board.root / f"{JOB}.json").write_text(body)
        assert board.read(JOB) is None, body


def test_a_job_whose_process_stopped_before_it_ended_reads_as_failed(
        tmp_path: Path, gone_pid: int) -> None:
    board = JobBoard(tmp_path / "jobs")
    _write_as(board, gone_pid, _job("running"), version=5)
    snap = board.read(JOB)
    assert snap is not None and not snap.owner_alive
    assert snap.job["state"] == "failed" and snap.job["error"] == STOPPED
    assert snap.version == 6  # a change, for event streams waiting on it
    _write_as(board, gone_pid, _job("done"), version=7)  # it had ended: as it was
    snap = board.read(JOB)
    assert snap is not None and snap.job == _job("done") and snap.version == 7


def test_a_running_owner_keeps_its_job_as_written(tmp_path: Path, live_pid: int) -> None:
    board = JobBoard(tmp_path / "jobs")
    _write_as(board, live_pid, _job("running"))
    snap = board.read(JOB)
    assert snap is not None and snap.owner_alive and snap.job["state"] == "running"


def test_an_asset_is_claimed_by_one_job_at_a_time(tmp_path: Path) -> None:
    board = JobBoard(tmp_path / "jobs")
    assert board.claim("talk", JOB) is None
    assert board.holder("talk") == JOB
    assert board.claim("talk", OTHER) == JOB
    assert board.claim("other-asset", OTHER) is None
    board.release("talk", OTHER)  # not its claim: stays
    assert board.holder("talk") == JOB
    board.release("talk", JOB)
    assert board.holder("talk") is None
    assert board.claim("talk", OTHER) is None


@pytest.mark.parametrize("asset", ["", "..", "../x", "a/b", ".hidden", "a\x00b", "x" * 200])
def test_only_asset_ids_name_claims(tmp_path: Path, asset: str) -> None:
    board = JobBoard(tmp_path / "jobs")
    with pytest.raises(ValueError):
        board.claim(asset, JOB)
    assert board.holder(asset) is None
    board.release(asset, JOB)
    assert not (tmp_path / "jobs").exists()


def test_a_claim_held_by_a_running_process_is_respected(tmp_path: Path, live_pid: int) -> None:
    board = JobBoard(tmp_path / "jobs")
    _claim_as(board, live_pid, "talk", OTHER)
    assert board.holder("talk") == OTHER
    assert board.claim("talk", JOB) == OTHER


def test_a_claim_left_by_a_stopped_process_is_taken_over(tmp_path: Path, gone_pid: int) -> None:
    board = JobBoard(tmp_path / "jobs")
    _claim_as(board, gone_pid, "talk", OTHER)
    assert board.holder("talk") is None
    assert board.claim("talk", JOB) is None
    assert board.holder("talk") == JOB


def test_claims_race_between_processes(tmp_path: Path) -> None:
    """Eight processes claim one asset at once: exactly one gets it."""
    root = tmp_path / "jobs"
    code = ("import sys; from pathlib import Path; from origin.packaging.job_board import JobBoard; "
            "b = JobBoard(Path(sys.argv[1])); h = b.claim('talk', sys.argv[2]); "
            "print('won' if h is None else 'lost:' + h); sys.stdout.flush(); "
            "import time; time.sleep(2)")  # stay alive, so that the claim stays held
    repo = Path(__file__).resolve().parents[2]
    procs = [subprocess.Popen([sys.executable, "-c", code, str(root), f"{i:016x}"],
                              stdout=subprocess.PIPE, text=True, cwd=repo) for i in range(8)]
    outs = [p.communicate(timeout=30)[0].strip() for p in procs]
    winners = [o for o in outs if o == "won"]
    assert len(winners) == 1, outs
    winner = f"{outs.index('won'):016x}"
    assert all(o in ("won", f"lost:{winner}", "lost:unknown") for o in outs), outs


def test_sweep_removes_what_stopped_processes_left(tmp_path: Path, gone_pid: int,
                                                   live_pid: int) -> None:
    board = JobBoard(tmp_path / "jobs")
    _write_as(board, gone_pid, _job("done", JOB))
    _write_as(board, live_pid, _job("done", OTHER))
    old = time.time() - 10
    for name in (JOB, OTHER):
        os.utime(board.root / f"{name}.json", (old, old))
    (board.root / f".{JOB}.{gone_pid}.tmp").write_text("{")
    _claim_as(board, gone_pid, "stale", JOB)
    _claim_as(board, live_pid, "held", OTHER)
    board.sweep(keep=5)
    assert board.read(JOB) is None  # old, and its process is gone
    assert board.read(OTHER) is not None  # its process still runs
    assert not list(board.root.glob(".*.tmp"))
    assert board.holder("held") == OTHER
    assert not (board.claims / "stale").exists()
    board.sweep(keep=3600)  # young files stay whoever wrote them
    assert board.read(OTHER) is not None
