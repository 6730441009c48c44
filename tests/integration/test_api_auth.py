"""API keys: with `[security] api_keys` set, write endpoints need `Authorization: Bearer KEY`;
reads stay open. Without keys everything is open (the server refuses to listen beyond
loopback then, tested with the server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_api_support import Api, api_config, make_speech, uploads_left

from origin.app import create_app
from origin.auth import bearer_token, key_matches
from storage.base import Store

KEYS = ("first-key-123", "second-key-456")


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_speech(tmp_path_factory.mktemp("speech") / "speech.wav").read_bytes()


@pytest.fixture
async def api(local_store: Store, tmp_path: Path, origin_client: Any) -> Api:
    cfg = api_config(tmp_path, api_keys=KEYS)
    return Api(await origin_client(create_app(cfg, local_store)), local_store, cfg)


BAD_HEADERS = {
    "missing": None,
    "wrong key": "Bearer not-the-key",
    "prefix of a key": "Bearer first-key",
    "basic scheme": "Basic Zmlyc3Qta2V5LTEyMzo=",
    "no token": "Bearer",
    "two tokens": "Bearer first-key-123 extra",
    "empty": "",
}


@pytest.mark.parametrize("case", sorted(BAD_HEADERS))
async def test_writes_are_refused_without_the_right_key(api: Api, speech: bytes,
                                                        case: str) -> None:
    header = BAD_HEADERS[case]
    headers = {} if header is None else {"Authorization": header}
    resp = await api.client.post("/v1/assets", params={"id": "x"}, data=speech,
                                 headers=headers)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    error = (await resp.json())["error"]
    assert error and KEYS[0] not in error
    resp = await api.client.delete("/v1/assets/x", headers=headers)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    # Nothing was received, nothing was packaged.
    assert await api.store.list("x/") == []
    assert uploads_left(api.cfg) == []


@pytest.mark.parametrize("key", KEYS)
async def test_writes_are_accepted_with_a_configured_key(api: Api, speech: bytes,
                                                         key: str) -> None:
    api.key = key
    status, body = await api.upload_raw(speech, id="ok")
    assert status == 202, body
    assert (await api.finish(body["job"]["id"]))["state"] == "done"
    resp = await api.client.delete("/v1/assets/ok", headers={"Authorization": f"bearer {key}"})
    assert resp.status == 204


async def test_reads_stay_open(api: Api, speech: bytes) -> None:
    api.key = KEYS[0]
    _s, body = await api.upload_raw(speech, id="open")
    await api.finish(body["job"]["id"])
    api.key = None
    for path in ("/v1/assets", "/v1/assets/open", "/v1/assets/open/download",
                 f"/v1/jobs/{body['job']['id']}", f"/v1/jobs/{body['job']['id']}/events",
                 "/assets/open/master.m3u8", "/healthz"):
        resp = await api.client.get(path)
        assert resp.status == 200, path
        await resp.read()


async def test_without_keys_writes_are_open(local_store: Store, tmp_path: Path,
                                            origin_client: Any) -> None:
    cfg = api_config(tmp_path)
    client = await origin_client(create_app(cfg, local_store))
    assert (await client.delete("/v1/assets/none")).status == 404


def test_bearer_parsing_and_comparison() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Bearer") is None
    assert bearer_token("Token abc") is None
    assert bearer_token(None) is None
    assert key_matches("b", ("a", "b"))
    assert not key_matches("c", ("a", "b"))
    assert not key_matches("", ("a",))
