"""`sori package --private`, `sori sign` and an upload with access=private, as users run
them: real processes, real ffmpeg and espeak-ng, the URLs played back from a real origin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from test_api_support import make_speech

from origin.app import create_app
from settings import Config, OriginConfig, SecurityConfig
from signing.tokens import verify
from storage.local import LocalStore

KEYS = {"k1": "a-signing-secret-for-cli-tests-01"}


def _env(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SORI_")}
    env.update(SORI_STORAGE_ROOT=str(root), SORI_SECURITY_SIGNING_KEYS=json.dumps(KEYS),
               SORI_PACKAGER_LOUDNESS="false", **extra)
    return env


def _sori(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sori", *args], env=env, capture_output=True,
                          text=True, timeout=300)


async def test_package_private_then_sign_and_play(tmp_path: Path, origin_client: Any) -> None:
    root = tmp_path / "media"
    wav = make_speech(tmp_path / "s.wav", "A private word, for signed ears only.")
    env = _env(root)
    done = _sori("package", str(wav), "--id", "secret-1", "--private", "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["access"] == "private"

    signed = _sori("sign", "secret-1", "--ttl", "120", "--user", "u-7", env=env)
    assert signed.returncode == 0, signed.stderr
    urls = json.loads(signed.stdout)
    assert set(urls) >= {"hls", "dash", "download", "expires"}
    grant = verify(urls["token"], KEYS, now=time.time())
    assert grant.asset == "secret-1" and grant.user == "u-7"
    assert 100 < grant.expires - time.time() <= 120

    cfg = Config(origin=OriginConfig(upload_dir=str(tmp_path / "up")),
                 security=SecurityConfig(signing_keys=KEYS)).validate()
    client = await origin_client(create_app(cfg, LocalStore(root)))
    for name in ("hls", "dash", "download"):
        async with client.get(urls[name]) as resp:
            assert resp.status == 200, name
    async with client.get("/assets/secret-1/master.m3u8") as resp:
        assert resp.status == 403

    # Packaging again without --private keeps it private.
    again = _sori("package", str(wav), "--id", "secret-1", "--json", env=env)
    assert again.returncode == 0 and json.loads(again.stdout)["access"] == "private"


@pytest.mark.parametrize("args,message", [
    (("sign", "bad/id"), "invalid asset id"),
    (("sign", "ok-1", "--ttl", "0"), "ttl"),
    (("sign", "ok-1", "--ip", "not-an-ip"), "ip"),
])
def test_sign_refuses_bad_input(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    done = _sori(*args, env=_env(tmp_path))
    assert done.returncode == 2 and message in done.stderr.lower(), done.stderr


def test_sign_without_a_key_says_how_to_make_one(tmp_path: Path) -> None:
    env = _env(tmp_path)
    env["SORI_SECURITY_SIGNING_KEYS"] = "{}"
    done = _sori("sign", "ok-1", env=env)
    assert done.returncode == 2 and "signing_keys" in done.stderr


def test_sign_prefix(tmp_path: Path) -> None:
    done = _sori("sign", "--prefix", "show-12-", "--ttl", "60", env=_env(tmp_path))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert verify(out["token"], KEYS, now=time.time()).prefix == "show-12-"
