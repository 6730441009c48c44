"""The player page: `GET /`, its static files under `/player/`, and the npm players under `/vendor/`.

Everything is served from the repository's `player/` directory and the packages `npm ci`
installed into `player/node_modules/`; nothing comes from the internet. Only the files named
in the two whitelists below can be reached: a request path is a dictionary key, never a
filesystem path, so there is no traversal to defend against.

Caching: the page and its own files change with the repository, so they are `no-cache`
(revalidated by ETag / Last-Modified on every load). The vendor files are versioned by
`package-lock.json`, so they get a short max-age.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aiohttp import web

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
    "style.css": CSS,
    "favicon.svg": SVG,
}

# URL name under /vendor/ -> path below player/node_modules/.
VENDOR_FILES: Final[dict[str, str]] = {
    "hls.min.js": "hls.js/dist/hls.min.js",
    "dash.all.min.js": "dashjs/dist/modern/umd/dash.all.min.js",
}

PAGE_CACHE: Final = "no-cache"
VENDOR_CACHE: Final = "public, max-age=3600"
ERROR_CACHE: Final = "no-store"


def setup(app: web.Application) -> None:
    """Add the page's routes to the origin's application (GET and HEAD)."""
    app.router.add_get("/", index, name="player-index")
    app.router.add_get("/player/{name}", page_file, name="player-file")
    app.router.add_get("/vendor/{name}", vendor_file, name="player-vendor")


async def index(request: web.Request) -> web.StreamResponse:
    return _file(PLAYER_DIR / "index.html", HTML, PAGE_CACHE, "player/index.html")


async def page_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    content_type = PAGE_FILES.get(name)
    if content_type is None:
        return _error(404, f"no such player file: {name!r}")
    return _file(PLAYER_DIR / name, content_type, PAGE_CACHE, f"player/{name}")


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
    return _file(path, JS, VENDOR_CACHE, f"player/node_modules/{rel}")


def _file(path: Path, content_type: str, cache: str, label: str) -> web.StreamResponse:
    if not path.is_file():
        return _error(404, f"{label} is missing from this installation")
    # FileResponse handles HEAD, ETag / Last-Modified, conditional requests and ranges.
    return web.FileResponse(
        path,
        headers={"Content-Type": content_type, "Cache-Control": cache,
                 "X-Content-Type-Options": "nosniff"},
    )


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status,
                             headers={"Cache-Control": ERROR_CACHE})
