"""Private assets over real sockets, on both stores: every object of a private VOD asset
(real espeak-ng speech and a short video, packaged by real ffmpeg) and of a private live
stream answers only to a valid signed URL; every other token is 403 with no byte of
media; HEAD, Range, conditional requests and CORS work under a valid one."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from test_api_support import PACKAGER, make_speech
from test_live_support import LiveHttp, wav_pcm
from test_origin_support import raw_request

from origin.app import create_app
from packager.pipeline import package
from settings import Config, OriginConfig, SecurityConfig
from signing.tokens import mint
from signing.urls import playback_paths
from storage.base import Store
from storage.local import LocalStore

KEYS = {"k1": "a-signing-secret-for-tests-0001"}
WRITE_KEY = "write-key-1"
AUDIO, VIDEO, OTHER = "talk-1", "clip-1", "other-1"
MEDIA_MARKERS = (b"#EXTM3U", b"<MPD", b"ftyp", b"moof", b"mdat", b"\xff\xd8\xff", b"WEBVTT")


def _config(tmp_path: Path, **security: Any) -> Config:
    sec = {"signing_keys": KEYS, "api_keys": (WRITE_KEY,), "token_failures_per_minute": 0,
           **security}
    return Config(
        origin=dataclasses.replace(OriginConfig(), upload_dir=str(tmp_path / "uploads"),
                                   trusted_proxies=("127.0.0.1",)),
        packager=PACKAGER,
        security=dataclasses.replace(SecurityConfig(), **sec),
    ).validate()


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Every object of three assets (private audio, private video, a public one), packaged
    once by real ffmpeg into a directory; each test copies them into its store."""
    root = tmp_path_factory.mktemp("private")
    speech = make_speech(root / "speech.wav")
    video = root / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "3",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
                    str(video)], check=True, capture_output=True, timeout=120)
    store = LocalStore(root / "store")

    async def run() -> None:
        await package(speech, store, PACKAGER, asset_id=AUDIO, access="private")
        await package(video, store, PACKAGER, asset_id=VIDEO, access="private")
        await package(speech, store, PACKAGER, asset_id=OTHER)

    asyncio.run(run())
    return {str(p.relative_to(root / "store")): p.read_bytes()
            for p in (root / "store").rglob("*") if p.is_file()}


@dataclasses.dataclass
class Origin:
    client: Any
    store: Store
    objects: dict[str, bytes]

    @property
    def host(self) -> str:
        return str(self.client.server.host)

    @property
    def port(self) -> int:
        return int(self.client.server.port)

    def keys_of(self, asset_id: str) -> list[str]:
        return sorted(k.partition("/")[2] for k in self.objects
                      if k.startswith(f"{asset_id}/") and not k.endswith("asset.json"))

    async def get(self, path: str, **kwargs: Any) -> tuple[int, Any, bytes]:
        async with self.client.request(kwargs.pop("method", "GET"), path, **kwargs) as resp:
            return resp.status, resp.headers, await resp.read()


async def _origin(store: Store, objects: dict[str, bytes], origin_client: Any,
                  cfg: Config) -> Origin:
    for key, data in objects.items():
        await store.put_bytes(key, data, "application/octet-stream")
    return Origin(await origin_client(create_app(cfg, store)), store, objects)


@pytest.fixture
async def origin(store: Store, packaged: dict[str, bytes], origin_client: Any,
                 tmp_path: Path) -> Origin:
    return await _origin(store, packaged, origin_client, _config(tmp_path))


def _token(asset: str = AUDIO, ttl: int = 600, **kwargs: Any) -> str:
    return mint(KEYS, expires=int(time.time()) + ttl, asset=asset, **kwargs)


def _signed(asset: str, token: str, rel: str) -> str:
    return f"/assets/{asset}/~{token}/{rel}"


def _assert_denied(status: int, headers: Any, body: bytes, reason: str = "invalid") -> None:
    assert status == 403, (status, body[:200])
    assert headers["Cache-Control"] == "no-store"
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["error"].startswith(f"{reason} token"), body
    assert not any(m in body for m in MEDIA_MARKERS)


# --- VOD: every object, every kind of bad token -----------------------------------------------

async def test_every_object_of_a_private_asset_needs_a_valid_token(origin: Origin) -> None:
    other = _token(OTHER)
    for asset in (AUDIO, VIDEO):
        rels = origin.keys_of(asset)
        classes = {r.rsplit(".", 1)[-1] for r in rels}
        assert {"m3u8", "mpd", "mp4", "m4s"} <= classes, classes
        if asset == VIDEO:
            assert {"jpg", "vtt"} <= classes, classes  # poster, thumbnails
        good = _token(asset)
        for rel in rels:
            for path in (f"/assets/{asset}/{rel}", _signed(asset, other, rel),
                         _signed(asset, "", rel), _signed(asset, "garbage", rel)):
                _assert_denied(*await origin.get(path))
            status, headers, body = await origin.get(f"/assets/{asset}/{rel}",
                                                     headers={"Range": "bytes=0-10"})
            _assert_denied(status, headers, body)
            status, headers, body = await origin.get(_signed(asset, good, rel))
            assert status == 200, (rel, status, body[:100])
            assert body == origin.objects[f"{asset}/{rel}"]


async def test_head_of_a_private_object_without_token_is_403(origin: Origin) -> None:
    rel = origin.keys_of(AUDIO)[0]
    status, headers, body = await origin.get(f"/assets/{AUDIO}/{rel}", method="HEAD")
    assert status == 403 and body == b"" and headers["Cache-Control"] == "no-store"


async def test_every_altered_field_is_refused(origin: Origin) -> None:
    good = _token(AUDIO, user="u1")
    body, mac = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    rel = "master.m3u8"
    for field, value in (("v", 2), ("kid", "k2"), ("exp", claims["exp"] + 3600),
                         ("sub", OTHER), ("sub", VIDEO), ("uid", "u2"), ("ip", True),
                         ("pfx", "t")):
        forged = {**claims, field: value}
        b = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
        _assert_denied(*await origin.get(_signed(AUDIO, f"{b}.{mac}", rel)))
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    _assert_denied(*await origin.get(_signed(AUDIO, f"{body}.{flipped}", rel)))
    status, _, _ = await origin.get(_signed(AUDIO, good, rel))
    assert status == 200


async def test_an_expired_token_is_refused_and_says_so(origin: Origin) -> None:
    short = _token(AUDIO, ttl=2)
    status, headers, _ = await origin.get(_signed(AUDIO, short, "master.m3u8"))
    assert status == 200
    # Nothing keeps it past the token: the max-age is capped at what is left of it.
    assert int(headers["Cache-Control"].split("max-age=")[1].split(",")[0]) <= 2
    await asyncio.sleep(2.2)
    for rel in ("master.m3u8", origin.keys_of(AUDIO)[-1]):
        _assert_denied(*await origin.get(_signed(AUDIO, short, rel)), reason="expired")
    status, headers, body = await origin.get(f"/v1/assets/{AUDIO}/download?token={short}")
    _assert_denied(status, headers, body, reason="expired")


async def test_a_prefix_token_cannot_be_aimed_at_another_asset(origin: Origin) -> None:
    token = mint(KEYS, expires=int(time.time()) + 600, prefix="talk-")
    status, _, body = await origin.get(_signed(AUDIO, token, "master.m3u8"))
    assert status == 200 and body.startswith(b"#EXTM3U")
    _assert_denied(*await origin.get(_signed(VIDEO, token, "master.m3u8")))
    for target in (
        f"/assets/{AUDIO}/~{token}/../../{VIDEO}/master.m3u8",
        f"/assets/{AUDIO}/~{token}/%2e%2e/%2e%2e/{VIDEO}/master.m3u8",
        f"/assets/{AUDIO}/~{token}/..%2f..%2f{VIDEO}/master.m3u8",
        f"/assets/{AUDIO}%2f..%2f{VIDEO}/~{token}/master.m3u8",
        f"/assets/{AUDIO}/~{token}//{VIDEO}/master.m3u8",
        f"/assets/{AUDIO}/~{token}%2f..%2f..%2f{VIDEO}/master.m3u8",
        f"/assets/{AUDIO}/~{token}/%2f{VIDEO}/master.m3u8",
        f"/assets//{VIDEO}/~{token}/master.m3u8",
        f"/assets/talk-%2e%2e/~{token}/master.m3u8",
        f"/assets/{AUDIO}/~{token}/..\\..\\{VIDEO}/master.m3u8",
    ):
        status, _, body = await raw_request(origin.host, origin.port, target)
        assert status in (400, 403, 404), (target, status)
        assert not any(m in body for m in MEDIA_MARKERS), target


async def test_a_removed_key_no_longer_verifies(store: Store, packaged: dict[str, bytes],
                                                origin_client: Any, tmp_path: Path) -> None:
    old = mint({"old": "the-old-signing-secret-0001"}, expires=int(time.time()) + 600,
               asset=AUDIO)
    rotated = _config(tmp_path, signing_keys={"new": "the-new-signing-secret-0001",
                                              "old": "the-old-signing-secret-0001"})
    o = await _origin(store, packaged, origin_client, rotated)
    assert (await o.get(_signed(AUDIO, old, "master.m3u8")))[0] == 200
    removed = _config(tmp_path, signing_keys={"new": "the-new-signing-secret-0001"})
    o2 = await _origin(store, packaged, origin_client, removed)
    _assert_denied(*await o2.get(_signed(AUDIO, old, "master.m3u8")))


async def test_an_ip_bound_token_through_trusted_proxies(origin: Origin) -> None:
    token = _token(AUDIO, client_ip="198.51.100.7")
    url = _signed(AUDIO, token, "master.m3u8")
    ok = await origin.get(url, headers={"X-Forwarded-For": "198.51.100.7"})
    assert ok[0] == 200
    # A client-supplied hop on the left is not believed; the edge's own is.
    ok = await origin.get(url, headers={"X-Forwarded-For": "203.0.113.1, 198.51.100.7"})
    assert ok[0] == 200
    for xff in ("198.51.100.8", "198.51.100.7, 198.51.100.8", None):
        _assert_denied(*await origin.get(url, headers={"X-Forwarded-For": xff} if xff else {}))


async def test_valid_token_http_semantics(origin: Origin) -> None:
    token = _token(AUDIO)
    seg = next(r for r in origin.keys_of(AUDIO) if r.endswith(".m4s"))
    url = _signed(AUDIO, token, seg)
    data = origin.objects[f"{AUDIO}/{seg}"]
    status, headers, body = await origin.get(url, method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) == len(data)
    status, headers, body = await origin.get(url, headers={"Range": "bytes=10-99"})
    assert status == 206 and body == data[10:100]
    assert headers["Content-Range"] == f"bytes 10-99/{len(data)}"
    status, headers, _ = await origin.get(url)
    assert "immutable" in headers["Cache-Control"]
    assert int(headers["Cache-Control"].split("max-age=")[1].split(",")[0]) <= 600
    status, _, _ = await origin.get(url, headers={"If-None-Match": headers["ETag"]})
    assert status == 304
    status, headers, _ = await origin.get(url, method="OPTIONS", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "range"})
    assert status in (200, 204) and "Access-Control-Allow-Origin" in headers
    # The download resumes with Range under the same token.
    dl = f"/v1/assets/{AUDIO}/download?token={token}"
    status, headers, whole = await origin.get(dl)
    assert status == 200 and "attachment" in headers["Content-Disposition"]
    status, _, rest = await origin.get(dl, headers={"Range": f"bytes={len(whole) // 2}-"})
    assert status == 206 and rest == whole[len(whole) // 2:]
    _assert_denied(*await origin.get(f"/v1/assets/{AUDIO}/download"))
    _assert_denied(*await origin.get(f"/v1/assets/{AUDIO}/download?token={_token(OTHER)}"))


async def test_public_assets_ignore_tokens_and_play_as_before(origin: Origin) -> None:
    assert (await origin.get(f"/assets/{OTHER}/master.m3u8"))[0] == 200
    assert (await origin.get(_signed(OTHER, _token(OTHER), "master.m3u8")))[0] == 200


# --- records, playback-url, switching access -------------------------------------------------

async def test_records_playback_url_and_switching(origin: Origin) -> None:
    auth = {"Authorization": f"Bearer {WRITE_KEY}"}
    status, _, body = await origin.get("/v1/assets")
    assert {a["id"] for a in json.loads(body)["assets"]} == {OTHER}
    status, _, body = await origin.get("/v1/assets", headers=auth)
    listed = {a["id"]: a for a in json.loads(body)["assets"]}
    assert set(listed) == {AUDIO, VIDEO, OTHER} and listed[AUDIO]["access"] == "private"
    assert (await origin.get(f"/v1/assets/{AUDIO}"))[0] == 404
    assert (await origin.get(f"/v1/assets/{AUDIO}", headers=auth))[0] == 200
    wrong = {"Authorization": "Bearer not-the-key"}
    for path in ("/v1/assets", f"/v1/assets/{OTHER}", f"/playback/{OTHER}"):
        status, headers, _ = await origin.get(path, headers=wrong)
        assert status == 401 and "Bearer" in headers["WWW-Authenticate"], path

    status, _, body = await origin.get(f"/v1/assets/{AUDIO}/playback-url", method="POST",
                                       json={"ttl": 120, "user": "u-9"})
    assert status == 401
    status, _, body = await origin.get(f"/v1/assets/{AUDIO}/playback-url", method="POST",
                                       json={"ttl": 120, "user": "u-9"}, headers=auth)
    urls = json.loads(body)
    assert status == 200 and set(urls) >= {"hls", "dash", "download", "expires"}
    assert 100 < urls["expires_at"] - time.time() <= 120
    for name in ("hls", "dash", "download"):
        assert (await origin.get(urls[name]))[0] == 200, name
    for bad in ({"ttl": 0}, {"ttl": "60"}, {"ttl": 10**9}, {"colour": 1}, {"user": 5}):
        status, _, _ = await origin.get(f"/v1/assets/{AUDIO}/playback-url", method="POST",
                                        json=bad, headers=auth)
        assert status == 400, bad
    status, _, _ = await origin.get("/v1/assets/nope/playback-url", method="POST", headers=auth)
    assert status == 404

    plain = f"/assets/{AUDIO}/master.m3u8"
    _assert_denied(*await origin.get(plain))
    status, _, body = await origin.get(f"/v1/assets/{AUDIO}", method="PATCH",
                                       json={"access": "public"}, headers=auth)
    assert status == 200 and json.loads(body)["access"] == "public"
    assert (await origin.get(plain))[0] == 200  # at once
    assert (await origin.get(urls["hls"]))[0] == 200  # signed URLs keep working
    status, _, _ = await origin.get(f"/v1/assets/{AUDIO}", method="PATCH",
                                    json={"access": "private"}, headers=auth)
    assert status == 200
    _assert_denied(*await origin.get(plain))  # at once, although it is cached now
    for bad in ({"access": "secret"}, {"state": "ready"}, {"title": 3}):
        status, _, _ = await origin.get(f"/v1/assets/{AUDIO}", method="PATCH", json=bad,
                                        headers=auth)
        assert status == 400, bad
    rec = json.loads(await origin.store.get(f"{AUDIO}/asset.json"))
    assert rec["access"] == "private"


async def test_page_endpoint_and_redaction(origin: Origin,
                                           caplog: pytest.LogCaptureFixture) -> None:
    auth = {"Authorization": f"Bearer {WRITE_KEY}"}
    assert (await origin.get(f"/playback/{AUDIO}"))[0] == 404
    status, _, body = await origin.get(f"/playback/{AUDIO}", headers=auth)
    urls = json.loads(body)
    assert status == 200 and "/~" in urls["hls"]
    status, _, body = await origin.get(f"/playback/{OTHER}")
    assert status == 200 and json.loads(body)["hls"] == f"/assets/{OTHER}/master.m3u8"
    token = urls["hls"].split("/~")[1].split("/")[0]
    with caplog.at_level(logging.INFO, logger="sori.access"):
        assert (await origin.get(urls["hls"]))[0] == 200
        _assert_denied(*await origin.get(_signed(AUDIO, token[:-2] + "xx", "master.m3u8")))
        await asyncio.sleep(0.7)  # the access log writes in batches
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "sori.access")
    assert "~redacted" in logged and token not in logged and token[:-2] not in logged
    status, _, metrics = await origin.get("/metrics")
    assert status == 200 and token.encode() not in metrics


async def test_failed_checks_are_throttled_per_address(store: Store, packaged: dict[str, bytes],
                                                       origin_client: Any,
                                                       tmp_path: Path) -> None:
    o = await _origin(store, packaged, origin_client,
                      _config(tmp_path, token_failures_per_minute=5))
    good = _signed(AUDIO, _token(AUDIO), "master.m3u8")
    assert (await o.get(good))[0] == 200
    for _ in range(5):
        _assert_denied(*await o.get(_signed(AUDIO, "x.y", "master.m3u8")))
    status, headers, _ = await o.get(_signed(AUDIO, "x.y", "master.m3u8"))
    assert status == 429 and int(headers["Retry-After"]) >= 1
    assert headers["Cache-Control"] == "no-store"
    assert (await o.get(good))[0] == 200  # a token that verified keeps playing
    # Another address (through the trusted edge) is not affected.
    status, _, _ = await o.get(_signed(AUDIO, "x.y", "master.m3u8"),
                               headers={"X-Forwarded-For": "198.51.100.20"})
    assert status == 403


# --- live ---------------------------------------------------------------------------------

async def test_a_private_live_stream(store: Store, origin_client: Any, tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    client = await origin_client(create_app(cfg, store))
    base = str(client.make_url("")).rstrip("/")
    wav = make_speech(tmp_path / "live.wav")
    rate, channels, pcm = wav_pcm(wav)
    async with aiohttp.ClientSession() as session:
        http = LiveHttp(session, base, key=WRITE_KEY)
        rec = await http.start("live-1", {"codec": "pcm_s16le", "sample_rate": rate,
                                          "channels": channels}, access="private")
        assert rec["access"] == "private"
        token = mint(KEYS, expires=int(time.time()) + 600, asset="live-1")
        paths = playback_paths("live-1", token)
        seq = await http.push("live-1", pcm[: rate * 2 * 2])  # two seconds
        master = await http.get(paths["hls"])
        assert master.status == 200 and master.text.startswith("#EXTM3U")
        uri = next(line for line in master.text.splitlines() if line.endswith(".m3u8"))
        media = f"/assets/live-1/~{token}/{uri}"
        playlist = await http.get(media)
        assert playlist.status == 200 and "#EXT-X-PART:" in playlist.text
        assert int(playlist.headers["Cache-Control"].split("max-age=")[1]) <= 600
        # A blocking reload for the next part, under the token.
        last = [line for line in playlist.text.splitlines() if line.startswith("#EXT-X-PART:")]
        assert last
        hint = next(line for line in playlist.text.splitlines()
                    if line.startswith("#EXT-X-PRELOAD-HINT"))
        part_uri = hint.split('URI="')[1].split('"')[0]
        part_url = media.rsplit("/", 1)[0] + "/" + part_uri
        msn = int(next(line for line in playlist.text.splitlines()
                       if line.startswith("#EXT-X-MEDIA-SEQUENCE:")).split(":")[1])
        msn += sum(1 for line in playlist.text.splitlines() if line.endswith(".m4s")
                   and not line.startswith("#"))
        pending = asyncio.ensure_future(http.get(part_url))
        reload = asyncio.ensure_future(http.get(media, params={"_HLS_msn": str(msn),
                                                               "_HLS_part": "0"}))
        await http.push("live-1", pcm[rate * 4: rate * 4 * 2], seq=seq)
        part, blocked = await pending, await reload
        assert part.status == 200 and b"moof" in part.body
        assert blocked.status == 200 and f"seg_{msn:05d}.0.m4s" in blocked.text
        for path in (f"/assets/live-1/{uri}", "/assets/live-1/master.m3u8",
                     "/assets/live-1/manifest.mpd", part_url.replace(f"/~{token}", ""),
                     _signed("live-1", _token(OTHER), uri)):
            res = await http.get(path)
            _assert_denied(res.status, res.headers, res.body)
        assert (await http.get(paths["dash"])).status == 200
        events = await session.get(f"{base}/v1/live/live-1/events",
                                   timeout=aiohttp.ClientTimeout(total=5))
        assert events.status == 403
        events.release()
        sealed = await http.finish("live-1")
        assert sealed["access"] == "private" and sealed["state"] == "ready"
        res = await http.get("/assets/live-1/master.m3u8")
        _assert_denied(res.status, res.headers, res.body)
        assert (await http.get(paths["hls"])).status == 200
        assert (await http.get(paths["download"])).status == 200


async def test_a_videos_poster_and_thumbnails_are_signed_too(origin: Origin) -> None:
    auth = {"Authorization": f"Bearer {WRITE_KEY}"}
    status, _, body = await origin.get(f"/v1/assets/{VIDEO}/playback-url", method="POST",
                                       headers=auth)
    urls = json.loads(body)
    assert status == 200 and "/~" in urls["poster"] and "/~" in urls["thumbnails"]
    for name in ("poster", "thumbnails"):
        status, _, data = await origin.get(urls[name])
        assert status == 200, name
        _assert_denied(*await origin.get(urls[name].replace(f"/~{urls['token']}", "")))
    # The sprite a thumbnail cue points at resolves under the token, like any relative URI.
    sprite = data.decode().split("-->")[1].split("\n")[1].split("#")[0].strip()
    base = urls["thumbnails"].rsplit("/", 1)[0]
    assert (await origin.get(f"{base}/{sprite}"))[0] == 200


async def test_an_upload_with_access_private(origin: Origin, tmp_path: Path) -> None:
    auth = {"Authorization": f"Bearer {WRITE_KEY}"}
    wav = make_speech(tmp_path / "up.wav", "Uploaded in private.")
    status, _, body = await origin.get("/v1/assets?id=up-1&access=private", method="POST",
                                       data=wav.read_bytes(), headers=auth)
    assert status == 202, body
    job = json.loads(body)["job"]["id"]
    for _ in range(300):
        status, _, body = await origin.get(f"/v1/jobs/{job}")
        if json.loads(body)["state"] in ("done", "failed"):
            break
        await asyncio.sleep(0.1)
    assert json.loads(body)["state"] == "done", body
    _assert_denied(*await origin.get("/assets/up-1/master.m3u8"))
    assert (await origin.get(_signed("up-1", _token("up-1"), "master.m3u8")))[0] == 200
    status, _, _ = await origin.get("/v1/assets?id=up-2&access=secret", method="POST",
                                    data=wav.read_bytes(), headers=auth)
    assert status == 400


async def test_the_edge_check(store: Store, packaged: dict[str, bytes], origin_client: Any,
                              tmp_path: Path) -> None:
    o = await _origin(store, packaged, origin_client,
                      _config(tmp_path, token_failures_per_minute=3))

    async def check(uri: str, xff: str = "198.51.100.1") -> tuple[int, Any, bytes]:
        return await o.get("/v1/access/check",
                           headers={"X-Original-URI": uri, "X-Forwarded-For": xff})

    short = _token(AUDIO, ttl=30)
    status, headers, body = await check(_signed(AUDIO, short, "v/x/low/seg_00001.m4s"))
    assert status == 204 and body == b""
    assert 24 <= int(headers["Cache-Control"].split("max-age=")[1]) <= 29
    status, headers, _ = await check(f"/v1/assets/{AUDIO}/download?token={short}&x=1")
    assert status == 204
    status, headers, _ = await check(f"/assets/{OTHER}/master.m3u8")
    assert status == 204 and headers["Cache-Control"] == "max-age=4"
    assert (await check("/assets/nope-1/master.m3u8"))[0] == 204  # the origin 404s it itself
    assert (await check("/player/app.js"))[0] == 204
    # What an edge might normalise onto a private object is refused, not waved through.
    for uri in (f"/assets/{AUDIO}/./master.m3u8", f"/assets/{OTHER}/~T/..%2F..%2F{AUDIO}/x",
                f"/assets/{AUDIO}//master.m3u8", f"/v1/assets/{AUDIO}/../{AUDIO}/download"):
        _assert_denied(*await check(uri))
    for uri in (f"/assets/{AUDIO}/master.m3u8", _signed(AUDIO, _token(OTHER), "master.m3u8"),
                f"/v1/assets/{AUDIO}/download", f"/v1/assets/{AUDIO}/download?token=x.y"):
        _assert_denied(*await check(uri))
    # Past the failure limit the check still answers 403 (auth_request knows no 429).
    _assert_denied(*await check(f"/assets/{AUDIO}/master.m3u8"))
    assert (await check(_signed(AUDIO, "a.b", "master.m3u8")))[0] == 403
    assert (await check(_signed(AUDIO, short, "master.m3u8")))[0] == 204


async def test_access_changed_by_another_worker_survives_the_seal(
        store: Store, origin_client: Any, tmp_path: Path) -> None:
    """A PATCH answered by another worker or replica changes the stored record, not the
    owner's copy: the seal keeps the stored access and title."""
    cfg = _config(tmp_path)
    client = await origin_client(create_app(cfg, store))
    base = str(client.make_url("")).rstrip("/")
    rate, channels, pcm = wav_pcm(make_speech(tmp_path / "w.wav", "Patched elsewhere."))
    async with aiohttp.ClientSession() as session:
        http = LiveHttp(session, base, key=WRITE_KEY)
        await http.start("live-p", {"codec": "pcm_s16le", "sample_rate": rate,
                                    "channels": channels})
        await http.push("live-p", pcm[: rate * 2])
        # The owner writes the stream's start into the record once its first byte is in
        # (in the background); the other worker's PATCH below comes after that write (one
        # landing inside it: test_live_workers.py, with a slow store).
        deadline = time.monotonic() + 10.0
        while json.loads(await store.get("live-p/asset.json"))["live"].get("start") is None:
            assert time.monotonic() < deadline, "the stream's start never reached the record"
            await asyncio.sleep(0.02)
        rec = json.loads(await store.get("live-p/asset.json"))  # as another worker does
        rec.update(access="private", title="Renamed elsewhere")
        await store.put_bytes("live-p/asset.json", json.dumps(rec).encode(), "application/json")
        sealed = await http.finish("live-p")
    assert sealed["access"] == "private" and sealed["title"] == "Renamed elsewhere"
    stored = json.loads(await store.get("live-p/asset.json"))
    assert stored["access"] == "private" and stored["state"] == "ready"
