"""Operations endpoints, error mapping, metrics and the access log of the origin app."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from test_origin_support import ASSET, SEGMENT, publish

from origin.app import ACCESS_LOG_KEY, create_app
from origin.errors import register_error
from origin.observe.metrics import metrics_of
from sori.config import Config
from storage.base import Store
from storage.errors import InvalidKey, NotFound, StoreUnavailable

SEG_URL = f"/assets/{ASSET}/{SEGMENT}"


async def test_healthz_and_readyz(store: Store, origin_client: Any) -> None:
    client = await origin_client(create_app(Config(), store))
    for path in ("/healthz", "/readyz"):
        async with client.get(path) as resp:
            assert resp.status == 200
            assert await resp.json() == {"status": "ok"}


async def test_readyz_when_the_store_fails(store: Store, origin_client: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    async def down() -> None:
        raise StoreUnavailable("gone")

    monkeypatch.setattr(store, "ping", down)
    client = await origin_client(create_app(Config(), store))
    async with client.get("/readyz") as resp:
        assert resp.status == 503
        assert resp.headers["Cache-Control"] == "no-store"
        assert "error" in await resp.json()
    async with client.get("/healthz") as resp:
        assert resp.status == 200


async def test_metrics(store: Store, origin_client: Any) -> None:
    await publish(store)
    app = create_app(Config(), store)
    client = await origin_client(app)
    for _ in range(3):
        async with client.get(SEG_URL) as resp:
            await resp.read()
    async with client.get("/assets/talk-1/nope.m3u8") as resp:
        assert resp.status == 404
    async with client.get("/healthz") as resp:
        pass
    async with client.get("/metrics") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        text = await resp.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests = {(s.labels["route"], s.labels["status"]): s.value
                for s in families["sori_http_requests"].samples if s.name.endswith("_total")}
    assert requests[("media", "200")] == 3
    assert requests[("media", "404")] == 1
    assert requests[("ops", "200")] == 1
    sent = {s.labels["route"]: s.value for s in families["sori_http_response_bytes"].samples
            if s.name.endswith("_total")}
    assert sent["media"] >= 3 * 100_000
    hits = [s.value for s in families["sori_cache_hits"].samples if s.name.endswith("_total")]
    misses = [s.value for s in families["sori_cache_misses"].samples
              if s.name.endswith("_total")]
    assert hits == [2] and misses[0] >= 1
    latency = families["sori_store_latency_seconds"]
    assert any(s.name.endswith("_count") and s.labels["op"] == "stat" and s.value >= 1
               for s in latency.samples)
    # Other modules add their metrics to the same registry.
    assert metrics_of(app).registry is not None


async def test_errors_are_json(store: Store, origin_client: Any,
                               caplog: pytest.LogCaptureFixture) -> None:
    class Custom(Exception):
        pass

    register_error(Custom, 409)
    app = create_app(Config(), store)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals at /etc/x")

    async def missing(request: web.Request) -> web.Response:
        raise NotFound("no such thing")

    async def invalid(request: web.Request) -> web.Response:
        raise InvalidKey("bad key")

    async def away(request: web.Request) -> web.Response:
        raise StoreUnavailable("S3 at 10.0.0.1 refused")

    async def custom(request: web.Request) -> web.Response:
        raise Custom("conflict")

    for path, handler in (("/boom", boom), ("/missing", missing), ("/invalid", invalid),
                          ("/away", away), ("/custom", custom)):
        app.router.add_get(path, handler)
    client = await origin_client(app)
    expected = {"/boom": 500, "/missing": 404, "/invalid": 400, "/away": 503, "/custom": 409,
                "/no/such/route": 404}
    for path, status in expected.items():
        async with client.get(path) as resp:
            assert resp.status == status, path
            assert resp.content_type == "application/json"
            body = await resp.json()
            assert set(body) == {"error"}
            assert "Traceback" not in body["error"]
            if status >= 500:
                assert resp.headers["Cache-Control"] == "no-store"
                assert "secret" not in body["error"] and "10.0.0.1" not in body["error"]
            if status == 503:
                assert resp.headers["Retry-After"] == "5"
    assert "secret internals" in caplog.text  # logged server side
    async with client.post("/healthz") as resp:
        assert resp.status == 405
        assert resp.content_type == "application/json"
        assert "GET" in resp.headers["Allow"]


async def test_access_log_line(store: Store, origin_client: Any,
                               caplog: pytest.LogCaptureFixture) -> None:
    await publish(store)
    app = create_app(Config(), store)
    client = await origin_client(app)
    with caplog.at_level(logging.INFO, logger="sori.access"):
        async with client.get(SEG_URL, headers={"Range": "bytes=0-99",
                                                "User-Agent": "test-agent"}) as resp:
            await resp.read()
        app[ACCESS_LOG_KEY].flush()  # lines are written in batches
    lines = [json.loads(line) for r in caplog.records if r.name == "sori.access"
             for line in r.getMessage().splitlines()]
    assert len(lines) == 1
    line = lines[0]
    assert line["method"] == "GET" and line["path"] == SEG_URL
    assert line["status"] == 206 and line["bytes"] == 100
    assert line["range"] == "bytes=0-99" and line["cache"] == "miss"
    assert line["ua"] == "test-agent" and line["remote"] == "127.0.0.1"
    assert line["ms"] >= 0


async def test_optional_modules_register_routes(store: Store, origin_client: Any) -> None:
    # origin.pages (written alongside) registers "/" through the hook.
    app = create_app(Config(), store)
    assert any(r.resource is not None and r.resource.canonical == "/"
               for r in app.router.routes())
