"""The player page: `GET /`, its static files under `/player/`, and the npm players under `/vendor/`;
the listening analytics dashboard (`GET /analytics`, player/analytics.html) the same way.

Everything is served from the repository's `player/` directory and the packages `npm ci`
installed into `player/node_modules/`; nothing comes from the internet. Only the files named
in the two whitelists below can be reached: a request path is a dictionary key, never a
filesystem path, so there is no traversal to defend against.

Caching: the page and its own files change with the repository, so they are `no-cache`
(revalidated by ETag / Last-Modified on every load). The vendor files are versioned by
`package-lock.json`, so they get a short max-age.

The files are kept in memory once read (with their gzip form, made once), and re-read when
a stat shows they changed: the page's start-up waits on a dozen of them at once
(bench/startup), and hls.js is 624 KB that gzip makes 190 KB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from aiohttp import web

from origin.http import headers as h
from origin.http.conditional import Outcome, evaluate, format_http_date
from origin.http.representation import accepts_gzip, compress, gzip_etag

PLAYER_DIR: Final = Path(__file__).resolve().parent.parent / "player"
NODE_MODULES: Final = PLAYER_DIR / "node_modules"

JS: Final = "text/javascript; charset=utf-8"
CSS: Final = "text/css; charset=utf-8"
HTML: Final = "text/html; charset=utf-8"
SVG: Final = "image/svg+xml"

# URL name under /player/ -> content type. The page's own files, nothing else.
PAGE_FILES: Final[dict[str, str]] = {
    "app.js": JS,
    "api.js": JS,
    "gallery.js": JS,
    "controller.js": JS,
    "controls.js": JS,
    "stats.js": JS,
    "thumbnails.js": JS,
    "util.js": JS,
    "upload.js": JS,
    "captions.js": JS,
    "transcript.js": JS,
    "chapters.js": JS,
    "style.css": CSS,
    "favicon.svg": SVG,
    # CMCD for the players; the analytics dashboard (GET /analytics) and its charts
    "cmcd.js": JS,
    "dashboard.js": JS,
    "charts.js": JS,
}

# Pages other than `/`: URL path -> file in player/.
PAGES: Final[dict[str, str]] = {
    "/analytics": "analytics.html",
}

# URL name under /vendor/ -> path below player/node_modules/.
VENDOR_FILES: Final[dict[str, str]] = {
    "hls.min.js": "hls.js/dist/hls.min.js",
    "dash.all.min.js": "dashjs/dist/modern/umd/dash.all.min.js",
}

# The page holds signed playback URLs (a token in the path) and, for a user who typed one,
# a key: no request it makes, nor a link followed from it, may carry its address elsewhere.
REFERRER_POLICY: Final = "no-referrer"

PAGE_CACHE: Final = "no-cache"
VENDOR_CACHE: Final = "public, max-age=3600"
ERROR_CACHE: Final = "no-store"


def setup(app: web.Application) -> None:
    """Add the page's routes to the origin's application (GET and HEAD)."""
    app.router.add_get("/", index, name="player-index")
    for url_path in PAGES:
        app.router.add_get(url_path, other_page)
    app.router.add_get("/player/{name}", page_file, name="player-file")
    app.router.add_get("/vendor/{name}", vendor_file, name="player-vendor")


async def index(request: web.Request) -> web.StreamResponse:
    return _file(request, PLAYER_DIR / "index.html", HTML, PAGE_CACHE, "player/index.html")


async def other_page(request: web.Request) -> web.StreamResponse:
    name = PAGES[request.path]
    return _file(request, PLAYER_DIR / name, HTML, PAGE_CACHE, f"player/{name}")


async def page_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    content_type = PAGE_FILES.get(name)
    if content_type is None:
        return _error(404, f"no such player file: {name!r}")
    return _file(request, PLAYER_DIR / name, content_type, PAGE_CACHE, f"player/{name}")


async def vendor_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    rel = VENDOR_FILES.get(name)
    if rel is None:
        return _error(404, f"no such vendor file: {name!r}")
    path = NODE_MODULES / rel
    if not path.is_file():
        return _error(
            404,
            f"player/node_modules/{rel} is not installed: run `make demo` "
            "(or `npm ci` in player/) to install the player's npm packages",
        )
    return _file(request, path, JS, VENDOR_CACHE, f"player/node_modules/{rel}")


@dataclass
class _Loaded:
    body: bytes
    mtime_ns: int
    size: int
    etag: str
    last_modified: int
    gz: bytes | None = field(default=None, repr=False)


_loaded: dict[Path, _Loaded] = {}


def _load(path: Path) -> _Loaded | None:
    """The file's bytes, from memory unless it changed on disk (or None when missing)."""
    try:
        st = path.stat()
    except OSError:
        return None
    item = _loaded.get(path)
    if item is None or item.mtime_ns != st.st_mtime_ns or item.size != st.st_size:
        try:
            body = path.read_bytes()
        except OSError:
            return None
        item = _Loaded(body, st.st_mtime_ns, len(body),
                       f'"{st.st_mtime_ns:x}-{len(body):x}"', int(st.st_mtime))
        _loaded[path] = item
    return item


def resolve(url_path: str) -> tuple[Path, str, str] | None:
    """The file, content type and Cache-Control behind a URL path of the page, or None."""
    if url_path == "/":
        return PLAYER_DIR / "index.html", HTML, PAGE_CACHE
    page = PAGES.get(url_path)
    if page is not None:
        return PLAYER_DIR / page, HTML, PAGE_CACHE
    if url_path.startswith("/player/"):
        content_type = PAGE_FILES.get(url_path[len("/player/"):])
        if content_type is not None:
            return PLAYER_DIR / url_path[len("/player/"):], content_type, PAGE_CACHE
    elif url_path.startswith("/vendor/"):
        rel = VENDOR_FILES.get(url_path[len("/vendor/"):])
        if rel is not None:
            return NODE_MODULES / rel, JS, VENDOR_CACHE
    return None


def plain_200(path: Path, content_type: str, cache: str,
              gz: bool) -> tuple[dict[str, str], bytes] | None:
    """Headers and body of a 200 for a request with no preconditions (origin.fast_lane
    answers those itself), or None when the file is missing."""
    item = _load(path)
    if item is None:
        return None
    headers = _headers(item, content_type, cache, gz)
    return headers, _body(item, gz)


def _headers(item: _Loaded, content_type: str, cache: str, gz: bool) -> dict[str, str]:
    headers = {h.CONTENT_TYPE: content_type, h.CACHE_CONTROL: cache,
               h.ETAG: gzip_etag(item.etag) if gz else item.etag,
               h.LAST_MODIFIED: format_http_date(item.last_modified), h.VARY: "Accept-Encoding",
               "X-Content-Type-Options": "nosniff", "Referrer-Policy": REFERRER_POLICY}
    if gz:
        headers[h.CONTENT_ENCODING] = h.GZIP
    return headers


def _body(item: _Loaded, gz: bool) -> bytes:
    if not gz:
        return item.body
    if item.gz is None:
        item.gz = compress(item.body)
    return item.gz


def _file(request: web.Request, path: Path, content_type: str, cache: str,
          label: str) -> web.Response:
    item = _load(path)
    if item is None:
        return _error(404, f"{label} is missing from this installation")
    gz = accepts_gzip(request.headers.get(h.ACCEPT_ENCODING))
    headers = _headers(item, content_type, cache, gz)
    hdrs = request.headers
    outcome = evaluate(request.method, headers[h.ETAG], item.last_modified,
                       if_match=hdrs.get(h.IF_MATCH),
                       if_unmodified_since=hdrs.get(h.IF_UNMODIFIED_SINCE),
                       if_none_match=hdrs.get(h.IF_NONE_MATCH),
                       if_modified_since=hdrs.get(h.IF_MODIFIED_SINCE))
    if outcome is Outcome.NOT_MODIFIED:
        del headers[h.CONTENT_TYPE]
        headers.pop(h.CONTENT_ENCODING, None)
        return web.Response(status=304, headers=headers)
    if outcome is Outcome.PRECONDITION_FAILED:
        return _error(412, "precondition failed")
    return web.Response(body=_body(item, gz), headers=headers)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status,
                             headers={"Cache-Control": ERROR_CACHE})
