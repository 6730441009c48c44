"""`sori analytics import` of a real edge's log (issue 13): behind a CDN the origin sees
each object once, so what listeners received is counted from the edge's access log.

The shipped edge (deploy/nginx/, rendered by edge_support as deploy/README.md says) runs
in a real nginx in front of `sori serve`, writing its access log in nginx's own
"combined" format (the CMCD query is part of `$request`). Users, each from a loopback
address of its own, play and fetch through it by rule; then `sori analytics import` reads
the log into a fresh SQLite database and `sori analytics summary --json` must give the
exact figures of those rules. The origin's own analytics are off: every figure comes from
the import.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import subprocess
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import m3u8
import pytest
from edge_support import Client, render_edge, self_signed
from real_clients import (
    NGINX,
    SORI,
    Library,
    Origin,
    free_port,
    local_env,
    nginx,
    require_tool,
    serve,
)

UA_APP = "Overcast/3.0 (+http://overcast.fm/; iOS podcast app)"
UA_CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/120.0.0.0 Safari/537.36")
UA_BOT = "Googlebot/2.1 (+http://www.google.com/bot.html)"
SPEECH, CLIP = "speech", "clip"


@dataclass
class Played:
    log: Path  # the edge's combined log
    store: Path
    received: dict[str, int]  # asset -> body bytes the users received
    work: Path


def _objects(store: Path, asset: str) -> list[str]:
    """Master, the first variant's media playlist, its init and every segment (paths below
    the asset), in the order a player asks for them."""
    root = store / asset
    master = m3u8.loads((root / "master.m3u8").read_text())
    variant = master.playlists[0].uri
    media = m3u8.loads((root / variant).read_text())
    folder = variant.rsplit("/", 1)[0]
    return (["master.m3u8", variant, f"{folder}/{media.segment_map[0].uri}"]
            + [f"{folder}/{s.uri}" for s in media.segments])


class User:
    def __init__(self, port: int, source: str, ua: str, received: dict[str, int]) -> None:
        self.client = Client(port, source)
        self.ua = ua
        self.received = received

    def get(self, path: str, **headers: str) -> int:
        r = self.client.get(path, {"User-Agent": self.ua, **headers})
        assert r.status in (200, 206), (path, r.status, r.body[:200])
        asset = path.split("/")[2] if path.startswith("/assets/") else path.split("/")[3]
        self.received[asset] = self.received.get(asset, 0) + len(r.body)
        return r.status

    def play(self, store: Path, asset: str, *, share: float = 1.0, cmcd: str | None = None
             ) -> None:
        objects = _objects(store, asset)
        head, segs = objects[:3], objects[3:]
        for rel in head + segs[:max(1, round(len(segs) * share))]:
            query = ""
            if cmcd is not None and rel.endswith(".m4s"):
                query = "?CMCD=" + urllib.parse.quote(cmcd, safe="")
            self.get(f"/assets/{asset}/{rel}{query}")


@pytest.fixture(scope="module")
def played(lib: Library, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Played]:
    require_tool(NGINX, "apt-get install nginx-light (`make install-test` does)")
    work = tmp_path_factory.mktemp("analytics-import")
    store = lib.copy(work / "store")
    cert, key = self_signed(work)
    env = local_env(store, SORI_ANALYTICS_ENABLED="false",
                    SORI_ORIGIN_TRUSTED_PROXIES='["127.0.0.1"]')
    received: dict[str, int] = {}
    with serve(env, work / "origin.log") as origin:
        log = _run_edge(work, origin, cert, key, store, received)
    yield Played(log, store, received, work)


def _run_edge(work: Path, origin: Origin, cert: Path, key: Path, store: Path,
              received: dict[str, int]) -> Path:
    prefix = work / "nginx"
    port = free_port()
    edge = render_edge(prefix, origin_port=origin.port, port=port, tls_port=free_port(),
                       cert=cert, key=key)
    # The access log in nginx's predefined "combined" format instead of the edge's own.
    combined = prefix / "combined.log"
    conf = prefix / "conf" / "sori-edge.conf"
    text = conf.read_text()
    assert text.count(f"access_log {edge.access_log} sori_edge;") == 2
    conf.write_text(text.replace(f"access_log {edge.access_log} sori_edge;",
                                 f"access_log {combined} combined;"))
    with nginx(prefix, edge.http_block, port, ready_path="/healthz"):
        size = (store / SPEECH / json.loads(
            (store / SPEECH / "asset.json").read_text())["download_key"]).stat().st_size
        # A player with CMCD on (one session) plays the speech, and the video clip.
        a = User(port, "127.0.0.2", UA_CHROME, received)
        a.play(store, SPEECH, cmcd='sid="imp-1",br=80,mtp=4000')
        a.play(store, CLIP)
        # An app plays it whole twice in the day: one download.
        b = User(port, "127.0.0.3", UA_APP, received)
        b.play(store, SPEECH)
        b.play(store, SPEECH)
        # Two byte probes: nothing.
        c = User(port, "127.0.0.4", UA_APP, received)
        for _ in range(2):
            assert c.get(f"/v1/assets/{SPEECH}/download", Range="bytes=0-1") == 206
        # A crawler: nothing.
        User(port, "127.0.0.5", UA_BOT, received).play(store, SPEECH)
        # A download resumed in three ranges: one download.
        e = User(port, "127.0.0.6", UA_APP, received)
        cuts = [0, size // 3, 2 * size // 3, size]
        for i in range(3):
            assert e.get(f"/v1/assets/{SPEECH}/download",
                         Range=f"bytes={cuts[i]}-{cuts[i + 1] - 1}") == 206
        # Half of the segments: nothing (the speech is shorter than a minute).
        User(port, "127.0.0.7", UA_APP, received).play(store, SPEECH, share=0.5)
        for u in (a, b, c, e):
            u.client.close()
    # nginx is stopped (SIGQUIT, graceful): every line is in the file.
    assert combined.stat().st_size > 0
    return combined


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def sori(args: list[str], db: Path, store: Path) -> subprocess.CompletedProcess[str]:
    env = local_env(store, SORI_ANALYTICS_DATABASE=str(db))
    return subprocess.run([str(SORI), *args], env=env, capture_output=True, text=True,
                          timeout=120)


def report(db: Path, store: Path, asset: str | None = None) -> dict[str, Any]:
    args = ["analytics", "summary", "--from", today(), "--to", today(), "--json"]
    if asset:
        args += ["--asset", asset]
    proc = sori(args, db, store)
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def _media_lines(log: Path) -> tuple[int, int]:
    """(all lines, lines whose request is a media object or a download)."""
    lines = log.read_text().splitlines()
    media = 0
    for line in lines:
        target = line.split('"')[1].split(" ")[1]
        media += target.startswith("/assets/") or (
            target.startswith("/v1/assets/") and target.split("?")[0].endswith("/download"))
    return len(lines), media


def test_an_imported_edge_log_counts_by_the_rules(played: Played, tmp_path: Path) -> None:
    db = tmp_path / "imported.sqlite3"
    proc = sori(["analytics", "import", str(played.log), "--source", "edge"], db, played.store)
    assert proc.returncode == 0, proc.stderr
    lines, media = _media_lines(played.log)
    assert media > 30 and lines > media  # the readiness probes of /healthz are in it too
    assert proc.stdout.strip() == (f"{lines} lines, {media} imported, {lines - media} "
                                   "skipped (malformed or not media)")
    speech = report(db, played.store, SPEECH)
    # a (whole, with CMCD), b (whole twice), e (three ranges); not c, the bot or the half.
    assert (speech["downloads"], speech["listeners"]) == (3, 3)
    assert speech["bytes"] == played.received[SPEECH]
    assert speech["apps"] == {"Overcast": 2, "Chrome": 1}
    assert speech["sessions"] == 1 and speech["mtp_kbps_p50"] == 4000
    clip = report(db, played.store, CLIP)
    assert (clip["downloads"], clip["bytes"]) == (1, played.received[CLIP])
    summary = report(db, played.store)
    # The player who heard both is one listener of the day.
    assert (summary["downloads"], summary["listeners"]) == (4, 3)
    assert {a["id"]: a["downloads"] for a in summary["assets"]} == {SPEECH: 3, CLIP: 1}
    # Imported again: the bytes twice, the same downloads and listeners (per client and day).
    assert sori(["analytics", "import", str(played.log)], db, played.store).returncode == 0
    again = report(db, played.store, SPEECH)
    assert (again["downloads"], again["listeners"]) == (3, 3)
    assert again["bytes"] == 2 * played.received[SPEECH]


def test_a_gzipped_log_imports_the_same(played: Played, tmp_path: Path) -> None:
    gz = tmp_path / "edge.log.gz"
    gz.write_bytes(gzip.compress(played.log.read_bytes()))
    db = tmp_path / "gz.sqlite3"
    proc = sori(["analytics", "import", str(gz)], db, played.store)
    assert proc.returncode == 0, proc.stderr
    lines, media = _media_lines(played.log)
    assert proc.stdout.startswith(f"{lines} lines, {media} imported")
    speech = report(db, played.store, SPEECH)
    assert (speech["downloads"], speech["bytes"]) == (3, played.received[SPEECH])


@pytest.mark.parametrize("kind", ["missing", "directory", "binary", "truncated gzip"])
def test_a_bad_file_exits_2_with_one_line(played: Played, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "edge.log"
    if kind == "directory":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(b"\x00\x01\x02" * 1000)
    elif kind == "truncated gzip":
        path.write_bytes(gzip.compress(played.log.read_bytes() * 20)[:600])
    db = tmp_path / "bad.sqlite3"
    proc = sori(["analytics", "import", str(path)], db, played.store)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"sori: {path}")
    assert "Traceback" not in proc.stderr
