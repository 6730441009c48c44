"""origin/pages.py over a real loopback server: the page, its files, the vendor players."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp import web

from origin import pages

PLAYER = Path(pages.__file__).resolve().parent.parent / "player"


@pytest.fixture
async def client(origin_client):  # type: ignore[no-untyped-def]
    app = web.Application()
    pages.setup(app)
    return await origin_client(app)


async def test_index_is_the_player_page(client) -> None:  # type: ignore[no-untyped-def]
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    assert resp.headers["Cache-Control"] == "no-cache"
    assert resp.headers["ETag"]
    body = await resp.text()
    assert '<video id="video" preload="metadata"' in body
    # A revalidation costs no body.
    again = await client.get("/", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status == 304


async def test_every_file_the_page_references_is_served(client) -> None:  # type: ignore[no-untyped-def]
    html = (PLAYER / "index.html").read_text()
    refs = set(re.findall(r'(?:src|href)="(/(?:player|vendor)/[^"]+)"', html))
    for js in PLAYER.glob("*.js"):  # module imports: './x.js'
        refs |= {f"/player/{m}" for m in re.findall(r"from '\./([\w.-]+)'", js.read_text())}
    assert "/vendor/hls.min.js" in refs and "/player/app.js" in refs
    for ref in sorted(refs):
        resp = await client.get(ref)
        assert resp.status == 200, ref
        ctype = resp.headers["Content-Type"]
        if ref.endswith(".js"):
            assert ctype == "text/javascript; charset=utf-8", ref
        elif ref.endswith(".css"):
            assert ctype == "text/css; charset=utf-8", ref
        elif ref.endswith(".svg"):
            assert ctype == "image/svg+xml", ref


async def test_every_page_file_is_whitelisted() -> None:
    on_disk = {p.name for p in PLAYER.iterdir() if p.suffix in (".js", ".css", ".svg")}
    assert on_disk <= set(pages.PAGE_FILES), on_disk - set(pages.PAGE_FILES)


async def test_vendor_files_have_a_short_max_age(client) -> None:  # type: ignore[no-untyped-def]
    for name in pages.VENDOR_FILES:
        resp = await client.get(f"/vendor/{name}")
        assert resp.status == 200, name
        assert resp.headers["Cache-Control"] == "public, max-age=3600"
        head = await client.head(f"/vendor/{name}")
        assert head.status == 200
        assert head.headers["Content-Length"] == resp.headers["Content-Length"]
        assert await head.read() == b""


@pytest.mark.parametrize("path", [
    "/player/../setup.cfg", "/player/%2e%2e%2fsetup.cfg", "/player/package.json",
    "/player/index.html.bak", "/player/node_modules", "/vendor/hls.js", "/vendor/..%2f..%2fsetup.cfg",
    "/vendor/%00", "/player/%2fetc%2fpasswd",
])
async def test_only_whitelisted_names(client, path: str) -> None:  # type: ignore[no-untyped-def]
    resp = await client.get(path)
    assert resp.status in (400, 404), path
    if resp.status == 404 and resp.content_type == "application/json":
        assert "error" in await resp.json()


async def test_missing_node_modules_says_run_make_demo(client, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(pages, "NODE_MODULES", tmp_path / "node_modules")
    resp = await client.get("/vendor/hls.min.js")
    assert resp.status == 404
    assert resp.content_type == "application/json"
    assert "make demo" in (await resp.json())["error"]


def _imports(name: str, seen: set[str] | None = None) -> set[str]:
    """Every page module `name` imports, transitively."""
    seen = set() if seen is None else seen
    for dep in re.findall(r"from '\./([\w.-]+)'", (PLAYER / name).read_text()):
        if dep not in seen:
            seen.add(dep)
            _imports(dep, seen)
    return seen


def test_the_page_preloads_its_whole_module_graph() -> None:
    html = (PLAYER / "index.html").read_text()
    preloaded = set(re.findall(r'<link rel="modulepreload" href="/player/([\w.-]+)">', html))
    assert preloaded == _imports("app.js")


async def test_files_are_gzipped_for_clients_that_accept_it(client) -> None:  # type: ignore[no-untyped-def]
    import gzip

    on_disk = (PLAYER / "app.js").read_bytes()
    plain = await client.get("/player/app.js", headers={"Accept-Encoding": "identity"},
                             auto_decompress=False)
    assert "Content-Encoding" not in plain.headers
    assert await plain.read() == on_disk
    gz = await client.get("/player/app.js", headers={"Accept-Encoding": "gzip, br"},
                          auto_decompress=False)
    assert gz.headers["Content-Encoding"] == "gzip"
    assert gz.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(await gz.read()) == on_disk
    assert gz.headers["ETag"] != plain.headers["ETag"]  # distinct representations
    again = await client.get("/player/app.js", headers={"Accept-Encoding": "gzip",
                                                        "If-None-Match": gz.headers["ETag"]})
    assert again.status == 304
    since = await client.get("/player/app.js", headers={
        "Accept-Encoding": "identity", "If-Modified-Since": plain.headers["Last-Modified"]})
    assert since.status == 304


async def test_a_changed_file_is_served_anew(client, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(pages, "PLAYER_DIR", tmp_path)
    page = tmp_path / "util.js"
    page.write_text("export const a = 1;\n")
    first = await client.get("/player/util.js")
    assert await first.text() == "export const a = 1;\n"
    page.write_text("export const a = 22;\n")
    second = await client.get("/player/util.js")
    assert await second.text() == "export const a = 22;\n"
    assert second.headers["ETag"] != first.headers["ETag"]
    page.unlink()
    assert (await client.get("/player/util.js")).status == 404
