"""A failure or Ctrl-C during packaging leaves the store as it was: no record, no version
objects, and the previous entry manifests back in place."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from packager.pipeline import package
from sori.config import PackagerConfig
from storage.base import ObjectInfo
from storage.errors import StoreUnavailable
from storage.local import LocalStore

CFG = dataclasses.replace(PackagerConfig(), segment_duration=2.0)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("speech") / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(out), "Failures must leave nothing behind. " * 6],
                   check=True)
    return out


class FailingStore(LocalStore):
    """A real LocalStore that stops answering after `budget` writes, like a store that
    goes away in the middle of a publish."""

    def __init__(self, root: Path, budget: int) -> None:
        super().__init__(root)
        self.budget = budget

    def _spend(self) -> None:
        self.budget -= 1
        if self.budget < 0:
            raise StoreUnavailable("store went away")

    async def put_file(self, key: str, path: Path, content_type: str) -> ObjectInfo:
        self._spend()
        return await super().put_file(key, path, content_type)

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> ObjectInfo:
        self._spend()
        return await super().put_bytes(key, data, content_type)

    async def put_if(self, key: str, data: bytes, content_type: str,
                     tag: str | None) -> ObjectInfo:
        self._spend()
        return await super().put_if(key, data, content_type, tag)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def published(speech: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Path, dict[str, Any]]:
    """One good asset, packaged once for the module and copied by each test."""
    root = tmp_path_factory.mktemp("published") / "media"
    return root, asyncio.run(package(speech, LocalStore(root), CFG, asset_id="talk"))


@pytest.mark.parametrize("budget", [0, 5, 17, 20])
async def test_store_failure_mid_publish_rolls_back(published: tuple[Path, dict[str, Any]],
                                                    speech: Path, tmp_path: Path,
                                                    budget: int) -> None:
    root = tmp_path / "media"
    shutil.copytree(published[0], root)
    good = published[1]
    before = snapshot(root)
    # writes: media objects, then 3 media playlists, then MPD + master, then the record
    with pytest.raises(StoreUnavailable):
        await package(speech, FailingStore(root, budget), CFG, asset_id="talk")
    assert snapshot(root) == before
    assert (root / "talk" / "asset.json").read_bytes() == before["talk/asset.json"]
    assert good["version"] in (root / "talk" / "master.m3u8").read_text()


async def test_failure_on_a_new_asset_leaves_nothing(speech: Path, tmp_path: Path) -> None:
    root = tmp_path / "media"
    with pytest.raises(StoreUnavailable):
        await package(speech, FailingStore(root, 19), CFG, asset_id="fresh")
    assert snapshot(root) == {}


def test_ctrl_c_cleans_up(speech: Path, tmp_path: Path) -> None:
    long = tmp_path / "long.wav"
    subprocess.run(["sox", *[str(speech)] * 40, str(long)], check=True)  # several minutes
    root = tmp_path / "media"
    env: dict[str, Any] = {**os.environ, "SORI_STORAGE_ROOT": str(root),
                           "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "sori", "package", str(long), "--id", "cc"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not any(p.name.startswith("sori-") for p in tmp_path.iterdir()):  # encoding began
        assert time.monotonic() < deadline and proc.poll() is None, "packaging never started"
        time.sleep(0.02)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert snapshot(root) == {} if root.exists() else True
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith("sori-")]
    assert leftovers == [], "the work directory was not removed"
    time.sleep(0.5)
    assert subprocess.run(["pgrep", "-f", str(long)], capture_output=True).returncode == 1, \
        "an ffmpeg child outlived the interrupted packager"
