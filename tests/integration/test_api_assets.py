"""The /v1 asset API over a real socket, on both stores, with real ffmpeg on espeak-ng
speech: upload (raw and multipart) → job events → listed and served; bad uploads leave
nothing; delete; download with resume; presigned URLs."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from test_api_support import Api, Event, api_config, make_speech, uploads_left
from test_origin_support import raw_request

from origin.app import create_app
from storage.base import Store


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_speech(tmp_path_factory.mktemp("speech") / "speech.wav").read_bytes()


@pytest.fixture
async def api(store: Store, tmp_path: Path, origin_client: Any) -> Api:
    cfg = api_config(tmp_path)
    client = await origin_client(create_app(cfg, store))
    return Api(client, store, cfg)


async def _assert_absent(api: Api, asset_id: str) -> None:
    assert asset_id not in await api.asset_ids()
    resp = await api.client.get(f"/v1/assets/{asset_id}")
    assert resp.status == 404
    assert "error" in await resp.json()
    assert await api.store.list(f"{asset_id}/") == []


# --- good uploads ------------------------------------------------------------------------

async def test_raw_upload_packages_and_is_served(api: Api, speech: bytes) -> None:
    status, body = await api.upload_raw(speech, id="talk-1", title="First talk")
    assert status == 202, body
    job = body["job"]
    assert body["asset"] == {"id": "talk-1"}
    assert job["asset"] == "talk-1" and job["state"] in ("queued", "running")
    assert 0.0 <= job["progress"] <= 1.0 and job["error"] is None

    events = [e for e in await api.events(job["id"]) if isinstance(e, Event)]
    names = [e.event for e in events]
    assert names[-1] == "done" and set(names[:-1]) <= {"progress"}
    progress = [e.json()["progress"] for e in events]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert any(e.json()["state"] == "running" for e in events[:-1])

    assert (await api.job(job["id"]))["state"] == "done"
    assert await api.asset_ids() == ["talk-1"]
    resp = await api.client.get("/v1/assets/talk-1")
    asset = await resp.json()
    assert resp.headers["Content-Type"].startswith("application/json")
    assert asset["title"] == "First talk" and asset["state"] == "ready"
    assert asset["kind"] == "audio" and asset["duration"] > 3
    master = await api.client.get(asset["hls"])
    assert master.status == 200
    assert (await master.text()).startswith("#EXTM3U")
    assert (await api.client.get(asset["dash"])).status == 200
    assert uploads_left(api.cfg) == []


async def test_multipart_upload_with_fields(api: Api, speech: bytes) -> None:
    status, body = await api.upload_form(speech, filename="My Talk.wav", id="form-1",
                                         title="Über talk")
    assert status == 202, body
    assert (await api.finish(body["job"]["id"]))["state"] == "done"
    asset = await (await api.client.get("/v1/assets/form-1")).json()
    assert asset["title"] == "Über talk"
    assert asset["source"]["name"] == "My-Talk.wav"
    assert (await api.client.get("/assets/form-1/master.m3u8")).status == 200
    assert uploads_left(api.cfg) == []


async def test_multipart_without_id_takes_it_from_the_file_name(api: Api,
                                                                 speech: bytes) -> None:
    status, body = await api.upload_form(speech, filename="weekly news.wav")
    assert status == 202, body
    assert body["asset"]["id"] == "weekly-news"
    assert (await api.finish(body["job"]["id"]))["state"] == "done"
    asset = await (await api.client.get("/v1/assets/weekly-news")).json()
    assert asset["title"] == "weekly news"


async def test_listing_is_newest_first_and_skips_non_assets(api: Api, speech: bytes) -> None:
    for asset_id in ("older", "newer"):
        _s, body = await api.upload_raw(speech, id=asset_id)
        assert (await api.finish(body["job"]["id"]))["state"] == "done"
    # Make the creation times distinct without waiting a second.
    rec = json.loads(await api.store.get("older/asset.json"))
    rec["created"] = "2000-01-01T00:00:00Z"
    await api.store.put_bytes("older/asset.json", json.dumps(rec).encode(), "application/json")
    await api.store.put_bytes("stray/notes.txt", b"not an asset", "text/plain")
    assert await api.asset_ids() == ["newer", "older"]


async def test_public_url_makes_urls_absolute(store: Store, tmp_path: Path,
                                              origin_client: Any, speech: bytes) -> None:
    cfg = api_config(tmp_path, public_url="https://cdn.example.com/")
    api = Api(await origin_client(create_app(cfg, store)), store, cfg)
    _s, body = await api.upload_raw(speech, id="cdn")
    assert (await api.finish(body["job"]["id"]))["state"] == "done"
    asset = await (await api.client.get("/v1/assets/cdn")).json()
    assert asset["hls"] == "https://cdn.example.com/assets/cdn/master.m3u8"
    assert asset["download"] == "https://cdn.example.com/v1/assets/cdn/download"
    listed = (await (await api.client.get("/v1/assets")).json())["assets"][0]
    assert listed["dash"] == "https://cdn.example.com/assets/cdn/manifest.mpd"


# --- bad uploads -------------------------------------------------------------------------

async def test_empty_uploads_are_400(api: Api) -> None:
    status, body = await api.upload_raw(b"", id="empty")
    assert status == 400 and "empty" in body["error"]
    status, body = await api.upload_form(b"", id="empty")
    assert status == 400 and "empty" in body["error"]
    await _assert_absent(api, "empty")
    assert uploads_left(api.cfg) == []


def _bad_files(speech: bytes) -> dict[str, tuple[bytes, str]]:
    """name → (bytes uploaded as NAME.wav, a fragment of the job's error)."""
    return {
        "text": (b"this is not audio\n" * 100, "not a media file"),
        "truncated": (speech[: len(speech) // 3], "truncated"),
    }


@pytest.mark.parametrize("name", ["text", "truncated"])
@pytest.mark.parametrize("form", ["raw", "multipart"])
async def test_bad_files_fail_the_job_and_leave_nothing(api: Api, speech: bytes, name: str,
                                                        form: str) -> None:
    content, fragment = _bad_files(speech)[name]
    if form == "raw":
        status, body = await api.upload_raw(content, id=name)
    else:
        status, body = await api.upload_form(content, filename=f"{name}.wav", id=name)
    assert status == 202, body
    job = await api.finish(body["job"]["id"])
    assert job["state"] == "failed"
    assert fragment in job["error"], job["error"]
    assert "internal" not in job["error"]
    assert (await api.job(job["id"]))["error"] == job["error"]
    await _assert_absent(api, name)
    assert uploads_left(api.cfg) == []


@pytest.mark.parametrize("form", ["raw", "multipart"])
async def test_oversize_upload_is_413(store: Store, tmp_path: Path, origin_client: Any,
                                      speech: bytes, form: str) -> None:
    cfg = api_config(tmp_path, max_upload_bytes=50_000)
    api = Api(await origin_client(create_app(cfg, store)), store, cfg)
    assert len(speech) > 50_000
    if form == "raw":
        status, body = await api.upload_raw(speech, id="big")
    else:
        status, body = await api.upload_form(speech, id="big")
    assert status == 413, body
    assert "50000 bytes" in body["error"] and "max_upload_bytes" in body["error"]
    await _assert_absent(api, "big")
    assert uploads_left(api.cfg) == []


async def test_oversize_without_content_length_is_cut_off(store: Store, tmp_path: Path,
                                                          origin_client: Any,
                                                          speech: bytes) -> None:
    """A chunked body gives no Content-Length: the limit is enforced while streaming."""
    cfg = api_config(tmp_path, max_upload_bytes=50_000)
    api = Api(await origin_client(create_app(cfg, store)), store, cfg)

    async def chunks() -> Any:
        for i in range(0, len(speech), 16_384):
            yield speech[i:i + 16_384]

    resp = await api.client.post("/v1/assets", params={"id": "chunked"}, data=chunks())
    assert resp.status == 413
    assert "max_upload_bytes" in (await resp.json())["error"]
    await _assert_absent(api, "chunked")
    assert uploads_left(api.cfg) == []


@pytest.mark.parametrize("bad_id", ["-dash", ".hidden", "a b", "x" * 129, "é"])
async def test_invalid_ids_are_400(api: Api, speech: bytes, bad_id: str) -> None:
    status, body = await api.upload_raw(speech, id=bad_id)
    assert status == 400 and "invalid asset id" in body["error"]
    status, body = await api.upload_form(speech, id=bad_id)
    assert status == 400 and "invalid asset id" in body["error"]
    for path in ("", "/download", "/presigned-url"):
        resp = await api.client.get(f"/v1/assets/{bad_id}{path}")
        assert resp.status == 400, (bad_id, path)
        assert "error" in await resp.json()
    assert (await api.client.delete(f"/v1/assets/{bad_id}")).status == 400
    assert uploads_left(api.cfg) == []


async def test_dot_segments_in_api_paths_never_escape(api: Api) -> None:
    server = api.client.server
    for target in ("/v1/assets/..", "/v1/assets/%2e%2e", "/v1/assets/..%2fdemo",
                   "/v1/assets/%2e%2e/download"):
        status, _h, body = await raw_request(server.host, server.port, target)
        assert status in (400, 404), target
        assert json.loads(body)["error"]


async def test_bad_kind_and_bad_form(api: Api, speech: bytes) -> None:
    status, body = await api.upload_raw(speech, id="k", kind="hologram")
    assert status == 400 and "kind" in body["error"]
    resp = await api.client.post("/v1/assets", data=b"--x\r\n",
                                 headers={"Content-Type": "multipart/form-data"})
    assert resp.status == 400
    form_without_file = {"id": "nofile", "title": "t"}
    resp = await api.client.post("/v1/assets", data=form_without_file)
    assert resp.status == 400  # urlencoded: no file at all
    assert uploads_left(api.cfg) == []


async def test_unknown_asset_and_job_are_404(api: Api) -> None:
    for path in ("/v1/assets/nope", "/v1/assets/nope/download",
                 "/v1/assets/nope/presigned-url", "/v1/jobs/nope", "/v1/jobs/nope/events"):
        resp = await api.client.get(path)
        assert resp.status == 404, path
        assert "error" in await resp.json()
    assert (await api.client.delete("/v1/assets/nope")).status == 404


# --- delete ------------------------------------------------------------------------------

async def test_delete_removes_every_object(api: Api, speech: bytes) -> None:
    _s, body = await api.upload_raw(speech, id="gone")
    assert (await api.finish(body["job"]["id"]))["state"] == "done"
    _s, body = await api.upload_raw(speech, id="kept")
    assert (await api.finish(body["job"]["id"]))["state"] == "done"
    assert (await api.client.get("/assets/gone/master.m3u8")).status == 200
    assert len(await api.store.list("gone/")) > 10
    resp = await api.client.delete("/v1/assets/gone")
    assert resp.status == 204
    await _assert_absent(api, "gone")
    assert (await api.client.get("/assets/gone/master.m3u8")).status == 404
    assert await api.asset_ids() == ["kept"]
    assert (await api.client.delete("/v1/assets/gone")).status == 404


async def test_delete_cleans_up_objects_without_a_record(api: Api) -> None:
    await api.store.put_bytes("orphan/v/abc/low/init.mp4", b"x" * 10, "audio/mp4")
    assert (await api.client.delete("/v1/assets/orphan")).status == 204
    assert await api.store.list("orphan/") == []


# --- download ----------------------------------------------------------------------------

async def test_download_resumes_from_the_middle(api: Api, speech: bytes) -> None:
    _s, body = await api.upload_raw(speech, id="dl")
    assert (await api.finish(body["job"]["id"]))["state"] == "done"
    resp = await api.client.get("/v1/assets/dl/download")
    assert resp.status == 200
    full = await resp.read()
    assert resp.headers["Content-Type"] == "audio/mp4"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="dl.m4a"'
    assert resp.headers["Accept-Ranges"] == "bytes"
    etag = resp.headers["ETag"]
    record = await (await api.client.get("/v1/assets/dl")).json()
    assert full == await api.store.get(f"dl/{record['download_key']}")

    middle = len(full) // 2
    part = await api.client.get("/v1/assets/dl/download",
                                headers={"Range": f"bytes={middle}-", "If-Range": etag})
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes {middle}-{len(full) - 1}/{len(full)}"
    assert part.headers["Content-Disposition"] == 'attachment; filename="dl.m4a"'
    assert full[:middle] + await part.read() == full

    stale = await api.client.get("/v1/assets/dl/download",
                                 headers={"Range": f"bytes={middle}-", "If-Range": '"old"'})
    assert stale.status == 200 and await stale.read() == full
    not_modified = await api.client.get("/v1/assets/dl/download",
                                        headers={"If-None-Match": etag})
    assert not_modified.status == 304
    beyond = await api.client.get("/v1/assets/dl/download",
                                  headers={"Range": f"bytes={len(full) + 10}-"})
    assert beyond.status == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(full)}"
    head = await api.client.head("/v1/assets/dl/download")
    assert head.status == 200 and await head.read() == b""
    assert head.headers["Content-Length"] == str(len(full))
    assert head.headers["Content-Disposition"] == 'attachment; filename="dl.m4a"'


# --- presigned URLs ----------------------------------------------------------------------

async def test_presigned_url_on_s3_serves_the_same_bytes(s3_store: Store, tmp_path: Path,
                                                         origin_client: Any,
                                                         speech: bytes) -> None:
    cfg = api_config(tmp_path)
    api = Api(await origin_client(create_app(cfg, s3_store)), s3_store, cfg)
    _s, body = await api.upload_raw(speech, id="signed")
    assert (await api.finish(body["job"]["id"]))["state"] == "done"
    resp = await api.client.get("/v1/assets/signed/presigned-url")
    assert resp.status == 200
    signed = await resp.json()
    assert signed["expires"] == cfg.security.presign_expiry
    assert signed["expires_at"].endswith("Z") and "T" in signed["expires_at"]
    direct = await (await api.client.get("/v1/assets/signed/download")).read()

    def fetch() -> tuple[bytes, str]:
        with urllib.request.urlopen(signed["url"], timeout=10) as r:
            return r.read(), r.headers.get("Content-Disposition", "")

    data, disposition = await asyncio.to_thread(fetch)
    assert data == direct
    assert "signed.m4a" in disposition


async def test_presigned_url_on_local_store_is_409(local_store: Store, tmp_path: Path,
                                                   origin_client: Any,
                                                   speech: bytes) -> None:
    cfg = api_config(tmp_path)
    api = Api(await origin_client(create_app(cfg, local_store)), local_store, cfg)
    _s, body = await api.upload_raw(speech, id="local")
    assert (await api.finish(body["job"]["id"]))["state"] == "done"
    resp = await api.client.get("/v1/assets/local/presigned-url")
    assert resp.status == 409
    error = (await resp.json())["error"]
    assert "local store" in error and "s3" in error
