"""End to end: real speech, packaged by the real CLI, served by `sori serve`, played by Chromium.

The module makes espeak-ng speech, packages it with `sori package` into a temporary local
store, starts `sori serve` on a free port over that store, and runs `drive.mjs`
(playwright-core driving Debian's /usr/bin/chromium) against the player page. The driver
reports every check as JSON; the assertions are here. Screenshots go to
`test-artifacts/` at the repository root.

Nothing is skipped: `make test` installs Chromium and the npm packages, so a missing one is
a failure that says what to install.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import wave
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
E2E_DIR = Path(__file__).resolve().parent
DRIVER = E2E_DIR / "drive.mjs"
ARTIFACTS = REPO / "test-artifacts"
SORI = REPO / ".venv" / "bin" / "sori"
CHROMIUM = Path(os.environ.get("SORI_TEST_CHROMIUM", "/usr/bin/chromium"))

DRIVER_TIMEOUT = 150  # seconds for one driver run (it normally takes 20-40)
SERVER_START_TIMEOUT = 20.0

SPEECH = (
    "Welcome to sori, a packaging and origin server for spoken word and video. "
    "This recording was made with espeak, a small speech synthesiser, so that the tests have "
    "real speech to play. The packager measures every segment it writes, and the manifests are "
    "rendered from those measurements, never from nominal values. One copy of the media serves "
    "both the HLS playlists and the DASH manifest. Segments live under a version prefix that "
    "never changes, so a content delivery network can cache them forever. The entry manifests "
    "carry a short max age, so a re-packaged asset reaches listeners within a minute. When you "
    "seek, the player fetches the segment that holds the new position and carries on from "
    "there. Thank you for listening to this short test recording."
)
SECOND_SPEECH = (
    "This is the second recording in the library, spoken by another voice. It exists so that "
    "the player loads a fresh asset after the first one, tearing down one engine and starting "
    "another, and still plays without a fatal error. Seeking near the end must work here too, "
    "and the position must keep moving once the new segment has arrived."
)


def _require(condition: bool, message: str) -> None:
    if not condition:
        pytest.fail(message, pytrace=False)


def _check_tools() -> None:
    _require(CHROMIUM.exists(), f"{CHROMIUM} is missing: install Debian's chromium (`make test` does).")
    _require(shutil.which("node") is not None, "node is missing: install Node.js 20 (`make test` needs it).")
    _require((E2E_DIR / "node_modules" / "playwright-core").is_dir(),
             "tests/e2e/node_modules is missing: run `npm ci` in tests/e2e (`make test` does).")
    _require((REPO / "player" / "node_modules" / "hls.js" / "dist" / "hls.min.js").is_file()
             and (REPO / "player" / "node_modules" / "dashjs").is_dir(),
             "player/node_modules is missing: run `npm ci` in player/ (`make demo` does).")
    _require(SORI.exists(), f"{SORI} is missing: run `make demo` to create the virtualenv.")
    _require(shutil.which("espeak-ng") is not None, "espeak-ng is missing (`make demo` installs it).")


def _speech(path: Path, text: str, voice: str, minimum: float) -> Path:
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), text],
                   check=True, capture_output=True, timeout=60)
    with wave.open(str(path)) as w:
        seconds = w.getnframes() / w.getframerate()
    assert seconds >= minimum, f"espeak-ng made only {seconds:.1f} s of speech"
    return path


def _package(env: dict[str, str], wav: Path, asset_id: str, title: str) -> None:
    proc = subprocess.run([str(SORI), "package", str(wav), "--id", asset_id, "--title", title],
                          env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"sori package {wav.name} exited {proc.returncode}:\n{proc.stderr}"
    assert proc.stdout.strip().splitlines()[-1] == asset_id, proc.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as res:
            return res.status, json.load(res)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


@contextlib.contextmanager
def _serve(store_root: Path, log: Path) -> Iterator[str]:
    """Run `sori serve` over `store_root` on a free port; yield its base URL."""
    port = _free_port()
    env = {**os.environ, "SORI_STORAGE_ROOT": str(store_root), "SORI_STORAGE_BACKEND": "local"}
    with log.open("wb") as out:
        proc = subprocess.Popen([str(SORI), "serve", "--host", "127.0.0.1", "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"sori serve exited {proc.returncode}:\n{log.read_text()}", pytrace=False)
            with contextlib.suppress(OSError), \
                    urllib.request.urlopen(f"{base}/healthz", timeout=1) as res:
                if res.status == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"sori serve did not answer /healthz within {SERVER_START_TIMEOUT} s:\n"
                            f"{log.read_text()}", pytrace=False)
            time.sleep(0.1)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _drive(scenario: dict[str, Any]) -> dict[str, Any]:
    scenario = {"chromium": str(CHROMIUM), "artifacts": str(ARTIFACTS), **scenario}
    proc = subprocess.run(["node", str(DRIVER)], input=json.dumps(scenario), capture_output=True,
                          text=True, timeout=DRIVER_TIMEOUT, cwd=E2E_DIR)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and lines, (
        f"drive.mjs exited {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    (ARTIFACTS / f"drive-{scenario.get('mode', 'play')}.json").write_text(json.dumps(result, indent=2))
    return result


def _assert_all_passed(result: dict[str, Any]) -> None:
    failed = [c for c in result["checks"] if not c["ok"]]
    report = "\n".join(f"  FAIL {c['name']}: {json.dumps(c['detail'])[:800]}" for c in failed)
    assert not failed, f"{len(failed)} of {len(result['checks'])} browser checks failed:\n{report}"
    assert not result["pageErrors"], f"uncaught errors in the page: {result['pageErrors']}"
    assert not result["fatalErrors"], f"fatal player errors: {result['fatalErrors']}"


# ---- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two spoken-word assets packaged by the real CLI into a fresh local store."""
    _check_tools()
    ARTIFACTS.mkdir(exist_ok=True)
    work = tmp_path_factory.mktemp("e2e")
    store_root = work / "store"
    env = {**os.environ, "SORI_STORAGE_ROOT": str(store_root), "SORI_STORAGE_BACKEND": "local"}
    first = _speech(work / "talk.wav", SPEECH, "en-us", minimum=30.0)
    second = _speech(work / "second.wav", SECOND_SPEECH, "en-gb+f3", minimum=10.0)
    with ThreadPoolExecutor(2) as pool:  # two ffmpeg pipelines at once: half the wait
        jobs = [pool.submit(_package, env, first, "talk", "A short tour of sori"),
                pool.submit(_package, env, second, "second-voice", "A second voice")]
        for job in jobs:
            job.result()
    return {"root": store_root, "work": work, "ids": ["talk", "second-voice"]}


@pytest.fixture(scope="module")
def origin(library: dict[str, Any]) -> Iterator[str]:
    with _serve(library["root"], library["work"] / "serve.log") as base:
        yield base


# ---- tests -----------------------------------------------------------------------------


def test_page_lists_the_packaged_assets(origin: str, library: dict[str, Any]) -> None:
    status, body = _get_json(f"{origin}/v1/assets")
    assert status == 200, f"GET /v1/assets answered {status}: {body}"
    ids = sorted(a["id"] for a in body["assets"])
    assert ids == sorted(library["ids"])
    with urllib.request.urlopen(f"{origin}/", timeout=5) as res:
        assert res.headers["Content-Type"].startswith("text/html")
        assert b'src="/vendor/hls.min.js"' in res.read()


def test_hls_and_dash_play_seek_and_switch_quality(origin: str, library: dict[str, Any]) -> None:
    talk, second = library["ids"]
    result = _drive({
        "base": origin,
        "mode": "play",
        "hls": [talk, second],
        "quality": talk,
        "dash": [talk],
        "expectAssets": len(library["ids"]),
    })
    _assert_all_passed(result)
    names = {c["name"] for c in result["checks"]}
    # The scenario really ran: the key checks are present, not just absent failures.
    for needed in (f"hls {talk}: time advances", f"hls {second}: playback resumes after the seek",
                   f"hls {talk}: LEVEL_SWITCHED to the rendition chosen in the menu",
                   f"hls {talk}: starts on AAC-LC, not on the data-saver rung",
                   f"hls {talk}: the data-saver rung is in the quality menu",
                   f"dash {talk}: time advances", f"dash {talk}: playback resumes after the seek"):
        assert needed in names, f"the driver did not run {needed!r}"
    for shot in ("phone-home", "phone-playing", "desktop-home", f"desktop-dash-{talk}"):
        assert (ARTIFACTS / f"{shot}.png").stat().st_size > 1000


def test_empty_library_has_a_friendly_page(tmp_path: Path) -> None:
    _check_tools()
    ARTIFACTS.mkdir(exist_ok=True)
    (tmp_path / "store").mkdir()
    with _serve(tmp_path / "store", tmp_path / "serve.log") as base:
        result = _drive({"base": base, "mode": "empty"})
    _assert_all_passed(result)


def test_upload_through_the_page(tmp_path: Path) -> None:
    """A user uploads a recording with the page's button; it is packaged and plays. A file
    that is not media ends with the job's error on the page and adds nothing."""
    _check_tools()
    ARTIFACTS.mkdir(exist_ok=True)
    (tmp_path / "store").mkdir()
    wav = _speech(tmp_path / "my-recording.wav", SECOND_SPEECH, "en-us", minimum=5.0)
    bogus = tmp_path / "notes.wav"
    bogus.write_text("not audio at all\n" * 50)
    with _serve(tmp_path / "store", tmp_path / "serve.log") as base:
        good = _drive({"base": base, "mode": "upload", "file": str(wav),
                       "expectId": "my-recording"})
        bad = _drive({"base": base, "mode": "upload", "file": str(bogus),
                      "expectError": "not a media file"})
    for result in (good, bad):
        _assert_all_passed(result)
    names = {c["name"] for c in good["checks"]}
    assert {"upload: the new asset is selected", "upload my-recording: time advances"} <= names


if __name__ == "__main__":  # pragma: no cover - convenience: python tests/e2e/test_player.py
    sys.exit(pytest.main([__file__, "-v"]))
