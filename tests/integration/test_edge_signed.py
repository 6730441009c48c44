"""The shipped edge (deploy/nginx/) in front of a real origin, with a private asset.

A real nginx runs deploy/nginx/sori-edge.conf rendered for free loopback ports; `sori
serve` is the origin (signing keys, trusted_proxies = ["127.0.0.1"]), serving espeak-ng
speech packaged twice by packager.pipeline.package: "talk" private, "open" public. Users
come from addresses of their own (127.0.0.2, 127.0.0.3, ...), so the edge and the origin
see them as different clients.

Checked: ten users with ten tokens play "talk" and every object reaches the origin once
(users 2-10 are served from the edge cache); no token, a forged token, an expired one and
another asset's token get a JSON 403 with no-store and no media bytes, also for objects
already in the edge cache, and so do requests that try to reach "talk" through another
asset's path; an address that keeps failing is refused even a new genuine token; a
public asset plays through the edge and ten users at once on a cold cache cost the origin
one request per object; a download resumes with Range under one token and is shared
between tokens; the TLS listener speaks HTTP/2. No token appears in the edge's log.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import subprocess
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import m3u8
import pytest
from edge_support import Client, origin_fetches, origin_log, render_edge, self_signed
from real_clients import (
    NGINX,
    SPEECH,
    Origin,
    Response,
    free_port,
    local_env,
    make_speech,
    nginx,
    require_tool,
    serve,
)

from packager.pipeline import package
from settings import Config, PackagerConfig, SecurityConfig
from sori.access import playback_urls
from storage import LocalStore

PRIVATE, PUBLIC = "talk", "open"
KEYS = {"k1": "edge-test-secret-0123456789"}
APP = Config(security=SecurityConfig(signing_keys=KEYS))  # what an app backend mints with
USERS = 10
STATUS = "X-Cache-Status"
LIMIT = 60  # [security] token_failures_per_minute (the default)
NGINX_CLOCK = 1.2  # s: nginx keeps cache validity in whole seconds


@dataclass
class Site:
    root: Path
    origin: Origin
    work: Path
    cert: Path
    key: Path

    def record(self, asset_id: str) -> dict[str, Any]:
        rec: dict[str, Any] = json.loads((self.root / asset_id / "asset.json").read_text())
        return rec


@dataclass
class EdgeRun:
    base_port: int
    tls_port: int
    access_log: Path
    clients: list[Client] = field(default_factory=list)

    def client(self) -> Client:
        """A client from a loopback address no other client of this module used (the
        origin counts failed checks per address for the whole module)."""
        c = Client(self.base_port, f"127.0.0.{next(_ADDRESSES)}")
        self.clients.append(c)
        return c


_ADDRESSES = itertools.count(2)
_USER_IDS = itertools.count(1)


def _urls(asset_id: str, ttl: int = 3600) -> dict[str, Any]:
    """Signed URLs for a new user (its own user id: every token differs)."""
    return playback_urls(APP, asset_id, ttl=ttl, user=f"u{next(_USER_IDS)}")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_tool(NGINX, "apt-get install nginx-light (`make install-test` does)")
    work = tmp_path_factory.mktemp("edge-signed")
    root = work / "store"
    speech = make_speech(work / "speech.wav", SPEECH, minimum=10.0)
    store = LocalStore(root)

    async def package_both() -> None:
        await asyncio.gather(
            package(speech, store, PackagerConfig(), asset_id=PRIVATE, title="private talk",
                    access="private", work_root=work),
            package(speech, store, PackagerConfig(), asset_id=PUBLIC, title="open talk",
                    access="public", work_root=work))

    asyncio.run(package_both())
    cert, key = self_signed(work)
    # One worker: failed token checks are counted per worker process, and the throttling
    # test needs all of its checks counted by the same one.
    env = local_env(root, SORI_SECURITY_SIGNING_KEYS=json.dumps(KEYS),
                    SORI_ORIGIN_TRUSTED_PROXIES='["127.0.0.1"]', SORI_ORIGIN_WORKERS="1")
    with serve(env, work / "origin.log") as origin:
        yield Site(root, origin, work, cert, key)


@pytest.fixture
def edge(site: Site, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[EdgeRun]:
    """A fresh nginx (empty caches) running the shipped configuration (indirect param:
    the download slice size)."""
    prefix = tmp_path / "nginx"
    port, tls_port = free_port(), free_port()
    rendered = render_edge(prefix, origin_port=site.origin.port, port=port,
                           tls_port=tls_port, cert=site.cert, key=site.key,
                           download_slice=getattr(request, "param", None))
    with nginx(prefix, rendered.http_block, port, ready_path="/healthz"):
        run = EdgeRun(port, tls_port, rendered.access_log)
        yield run
        for c in run.clients:
            c.close()


# --- a player's walk over HLS (and the MPD) --------------------------------------------


def _unsigned(path: str) -> str:
    """/assets/{id}/~{token}/rest -> /assets/{id}/rest (the object, whoever asks)."""
    parts = path.split("/")
    if len(parts) > 3 and parts[3].startswith("~"):
        del parts[3]
    return "/".join(parts)


def _join(base: str, uri: str) -> str:
    return urllib.parse.urlsplit(urllib.parse.urljoin("http://edge" + base, uri)).path


def play(client: Client, master: str) -> dict[str, Response]:
    """Every object a player meets from `master` (the multivariant playlist, the MPD,
    every media playlist, init segment and segment), each fetched once; keyed by the
    object's path without the token."""
    seen: dict[str, Response] = {}

    def fetch(path: str) -> Response:
        res = client.get(path)
        assert res.status == 200, (path, res.status, res.body[:200])
        seen[_unsigned(path)] = res
        return res

    top = m3u8.loads(fetch(master).body.decode())
    assert top.is_variant and top.playlists, master
    fetch(_join(master, "manifest.mpd"))
    lists = [_join(master, p.uri) for p in top.playlists]
    lists += [_join(master, m.uri) for m in top.media if m.uri]
    for pl_path in dict.fromkeys(lists):
        pl = m3u8.loads(fetch(pl_path).body.decode())
        assert pl.segments and pl.segment_map, pl_path
        for uri in dict.fromkeys([pl.segment_map[0].uri] + [s.uri for s in pl.segments]):
            fetch(_join(pl_path, uri))
    return seen


def _refused(res: Response, what: str) -> None:
    """A refusal: 403 JSON, no-store, and nothing that could be media."""
    assert res.status == 403, (what, res.status, res.body[:120])
    assert res.header("Cache-Control") == "no-store", (what, res.header("Cache-Control"))
    assert (res.header("Content-Type") or "").startswith("application/json"), what
    assert res.header(STATUS) is None, (what, res.header(STATUS))
    if res.body:
        assert "error" in json.loads(res.body), what
        assert len(res.body) < 200, what


def _forged(token: str) -> str:
    """One character of the MAC changed (not the last, whose low bits base64 ignores)."""
    claims, _, mac = token.partition(".")
    i = len(mac) // 2
    return f"{claims}.{mac[:i]}{'A' if mac[i] != 'A' else 'B'}{mac[i + 1:]}"


# --- tests -------------------------------------------------------------------------------


def test_ten_users_with_ten_tokens_share_one_cached_copy(site: Site, edge: EdgeRun) -> None:
    prefix = f"/assets/{PRIVATE}/"
    before = origin_fetches(site.origin.log, prefix)
    checks_before = _checks(site)
    users = [(edge.client(), _urls(PRIVATE)) for _ in range(USERS)]
    assert len({u["token"] for _, u in users}) == USERS

    first = play(users[0][0], users[0][1]["hls"])
    assert {r.header(STATUS) for r in first.values()} == {"MISS"}
    # Users 2-10 at once, as a crowd arrives.
    with ThreadPoolExecutor(USERS - 1) as pool:
        rest = list(pool.map(lambda u: play(u[0], u[1]["hls"]), users[1:]))

    for crawl in rest:
        assert crawl.keys() == first.keys()
        for path, res in crawl.items():
            assert res.body == first[path].body, path
    statuses = Counter(r.header(STATUS) for crawl in rest for r in crawl.values())
    hit_ratio = statuses["HIT"] / sum(statuses.values())
    fetched = origin_fetches(site.origin.log, prefix) - before
    checks = _checks(site) - checks_before
    print(f"\nedge: {len(first)} objects x {USERS} users; origin fetches per object: "
          f"{dict(Counter(fetched.values()))} (max {max(fetched.values())}); "
          f"hit ratio users 2-{USERS}: {hit_ratio:.3f} {dict(statuses)}; "
          f"access checks at the origin: {checks}")
    assert set(fetched) == set(first), set(fetched) ^ set(first)
    assert max(fetched.values()) == 1, {p: n for p, n in fetched.items() if n > 1}
    assert hit_ratio >= 0.9, statuses
    # One check per token (cached for the rest of the walk), not one per object.
    assert checks == USERS, checks
    # The edge's log names every request, and never a token.
    log = edge.access_log.read_text()
    assert log.count(f"/assets/{PRIVATE}/~redacted/") >= USERS * len(first)
    assert not any(u["token"] in log for _, u in users)


def _checks(site: Site) -> int:
    return sum(1 for e in origin_log(site.origin.log) if e["path"] == "/v1/access/check")


def test_refusals_get_no_bytes_even_when_the_object_is_cached(site: Site,
                                                              edge: EdgeRun) -> None:
    rec = site.record(PRIVATE)
    good, short = _urls(PRIVATE), _urls(PRIVATE, ttl=2)
    other = _urls(PUBLIC)["token"]
    owner = edge.client()
    walk = play(owner, good["hls"])  # everything is in the edge cache now
    objects = [p for p in walk if p.endswith((".m3u8", ".mpd"))][:3] + \
              [p for p in walk if p.endswith((".mp4", ".m4s"))][:3]
    objects.append(f"/assets/{PRIVATE}/master.m3u8")
    download = f"/v1/assets/{PRIVATE}/download"
    assert owner.get(f"{download}?token={good['token']}").status == 200
    # The short token works while it lasts (its grant is cached at the edge too).
    late = edge.client()
    assert late.get(_signed(objects[0], short["token"])).status == 200

    def refused_everywhere(client: Client, token: str | None, what: str) -> None:
        for obj in objects:
            for method, headers in (("GET", {}), ("HEAD", {}), ("GET", {"Range": "bytes=0-99"})):
                res = client.request(method, _signed(obj, token), headers)
                _refused(res, f"{what}: {method} {obj} {headers}")
                assert res.body not in walk[obj].body or not res.body
        dl = download if token is None else f"{download}?token={token}"
        _refused(client.get(dl, {"Range": "bytes=0-99"}), f"{what}: download")

    refused_everywhere(edge.client(), None, "no token")
    refused_everywhere(edge.client(), _forged(good["token"]), "forged token")
    refused_everywhere(edge.client(), other, f"{PUBLIC}'s token")
    # The owner's token is fine; altered by one character it is not, from the same client.
    assert owner.get(_signed(objects[1], good["token"])).header(STATUS) == "HIT"
    refused_everywhere(owner, _forged(good["token"]), "owner, forged")
    time.sleep(max(0.0, short["expires_at"] - time.time()) + NGINX_CLOCK)
    refused_everywhere(late, short["token"], "expired token")
    assert owner.get(_signed(objects[2], good["token"])).status == 200

    # Paths that try to reach "talk" through an asset the client may read: never its
    # bytes (the edge keys on the raw URI, as the origin parses it).
    open_token = _urls(PUBLIC)["token"]
    seg = next(p for p in objects if p.endswith(".m4s")).split("/", 3)[3]
    prober = edge.client()
    statuses: dict[str, int] = {}
    for path in (f"/assets/{PUBLIC}/../{PRIVATE}/{seg}",
                 f"/assets/{PUBLIC}/%2e%2e/{PRIVATE}/{seg}",
                 f"/assets/{PUBLIC}/~{open_token}/../../{PRIVATE}/{seg}",
                 f"/assets/{PUBLIC}/~{open_token}/..%2F..%2F{PRIVATE}/{seg}",
                 f"/assets/{PUBLIC}/~{open_token}/%2e%2e/%2e%2e/{PRIVATE}/{seg}",
                 f"/assets/{PRIVATE}/~{open_token}/{seg}",
                 f"/assets/{PRIVATE}//{seg}",
                 # nginx normalises these to a cached object's $uri; the origin's check
                 # answers 204 to URIs it cannot parse, so a key taken from $uri leaks.
                 f"/assets/{PRIVATE}/./{seg}",
                 f"/assets/{PRIVATE}/v/../{seg}",
                 f"/%61ssets/{PRIVATE}/{seg}",
                 f"/assets/{PRIVATE}/{seg.replace('/', '%2F', 1)}"):
        res = prober.get(path)
        statuses[path] = res.status
        assert res.status in (400, 403, 404), (path, res.status)
        assert walk[f"/assets/{PRIVATE}/{seg}"].body[:64] not in res.body, path
    assert rec["access"] == "private"
    print(f"\nprobes: {sorted(Counter(statuses.values()).items())}")


def _signed(obj: str, token: str | None) -> str:
    if token is None:
        return obj
    head, asset, rest = obj.split("/", 3)[1:]
    return f"/{head}/{asset}/~{token}/{rest}"


def test_an_address_that_keeps_failing_is_refused_even_a_new_token(site: Site,
                                                                   edge: EdgeRun) -> None:
    """The origin counts failed checks per client address (through the edge's
    X-Forwarded-For); past the limit that address is refused (403 at the check, which is
    all auth_request understands) even with a genuine token it had not used before."""
    guesser = edge.client()
    mine = _urls(PRIVATE)["hls"]
    assert guesser.get(mine).status == 200
    forged = _signed(f"/assets/{PRIVATE}/master.m3u8", _forged(_urls(PRIVATE)["token"]))
    for _ in range(LIMIT + 5):
        _refused(guesser.get(forged), "forged, repeated")
    fresh = _urls(PRIVATE)["hls"]
    _refused(guesser.get(fresh), "a new genuine token from a throttled address")
    # Another address is not affected, and a token that verified from this one before
    # still plays (a listener behind the guesser's NAT).
    assert edge.client().get(fresh).status == 200
    assert guesser.get(mine).status == 200


def test_a_public_asset_plays_through_the_edge_and_a_cold_crowd_costs_one_fetch(
        site: Site, edge: EdgeRun) -> None:
    prefix = f"/assets/{PUBLIC}/"
    before = origin_fetches(site.origin.log, prefix)
    clients = [edge.client() for _ in range(USERS)]
    with ThreadPoolExecutor(USERS) as pool:
        crawls = list(pool.map(lambda c: play(c, f"{prefix}master.m3u8"), clients))
    fetched = origin_fetches(site.origin.log, prefix) - before
    assert set(fetched) == set(crawls[0])
    assert max(fetched.values()) == 1, {p: n for p, n in fetched.items() if n > 1}
    again = play(edge.client(), f"{prefix}master.m3u8")
    assert {r.header(STATUS) for r in again.values()} == {"HIT"}
    # Its objects pass with a token too (any token: the asset is public), sharing the copy.
    signed = edge.client().get(_urls(PUBLIC)["hls"])
    assert signed.status == 200 and signed.header(STATUS) == "HIT"
    for path, res in again.items():
        assert res.body == crawls[0][path].body, path


@pytest.mark.parametrize("edge", [None, "64k"], indirect=True, ids=["slice-1m", "slice-64k"])
def test_a_download_resumes_with_range_under_one_token(site: Site, edge: EdgeRun) -> None:
    rec = site.record(PRIVATE)
    data = (site.root / PRIVATE / rec["download_key"]).read_bytes()
    size, cut = len(data), len(data) // 3
    path = f"/v1/assets/{PRIVATE}/download"
    before = origin_fetches(site.origin.log, path)
    listener = edge.client()
    url = _urls(PRIVATE)["download"]
    first = listener.get(url, {"Range": f"bytes=0-{cut - 1}"})
    assert first.status == 206, (first.status, first.body[:200])
    assert first.header("Content-Range") == f"bytes 0-{cut - 1}/{size}"
    etag = first.header("ETag")
    assert etag
    rest = listener.get(url, {"Range": f"bytes={cut}-", "If-Range": etag})
    assert rest.status == 206 and rest.header("Content-Range") == f"bytes {cut}-{size - 1}/{size}"
    assert first.body + rest.body == data
    assert "attachment" in (rest.header("Content-Disposition") or "")
    # Another user's token: the same bytes, from the edge's copy.
    other = edge.client()
    whole = other.get(_urls(PRIVATE)["download"])
    assert whole.status == 200 and whole.body == data and whole.header(STATUS) == "HIT"
    tail = other.get(_urls(PRIVATE)["download"], {"Range": "bytes=-1000"})
    assert tail.status == 206 and tail.body == data[-1000:]
    fetched = origin_fetches(site.origin.log, path) - before
    slice_size = 64 * 1024 if "slice 64k;" in _locations(edge) else 1024 * 1024
    slices = -(-size // slice_size)
    print(f"\ndownload: {size} bytes, {slices} slice(s), origin fetches {dict(fetched)}")
    assert sum(fetched.values()) == slices, fetched
    _refused(edge.client().get(path, {"Range": f"bytes={cut}-"}), "download, no token")


def _locations(edge: EdgeRun) -> str:
    return (edge.access_log.parent / "conf" / "sori-edge-locations.conf").read_text()


def test_the_tls_listener_speaks_http2(site: Site, edge: EdgeRun) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("curl is missing: apt-get install curl (`make install-test` does)",
                    pytrace=False)
    base = f"https://127.0.0.1:{edge.tls_port}"

    def get(path: str) -> tuple[str, str, bytes]:
        out = edge.access_log.parent / "curl.body"
        proc = subprocess.run([curl, "--http2", "-k", "-sS", "-o", str(out), "-w",
                               "%{http_version} %{response_code}", base + path],
                              capture_output=True, text=True, timeout=30, check=True)
        version, status = proc.stdout.split()
        return version, status, out.read_bytes()

    version, status, body = get(_urls(PRIVATE)["hls"])
    assert (version, status) == ("2", "200"), (version, status, body[:200])
    assert body.startswith(b"#EXTM3U")
    version, status, body = get(f"/assets/{PRIVATE}/master.m3u8")
    assert (version, status) == ("2", "403") and b"error" in body
