"""Support for test_edge_signed.py (no tests here): the shipped edge configuration
(deploy/nginx/) rendered and run by a real nginx, a self-signed certificate for its TLS
listener, HTTP clients that each come from an address of their own, and the origin's
access log read back per object.

    edge = render_edge(work, origin_port=..., port=..., tls_port=..., cert=..., key=...)
    with nginx(work, edge.http_block, edge.port, ...) as base: ...

The template is filled in the way deploy/README.md tells a user to (every ${SORI_EDGE_*}
name replaced, nginx's own $variables left alone), so the test runs the file users run.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from real_clients import HttpClient, require_tool

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "nginx"
TEMPLATE = DEPLOY / "sori-edge.conf"
LOCATIONS = DEPLOY / "sori-edge-locations.conf"
PLACEHOLDER = re.compile(r"\$\{(SORI_EDGE_[A-Z_]+)\}")
ACCESS_LOG_FLUSH = 0.8  # s: the origin writes its access log in batches (FLUSH_AFTER 0.5 s)


def render(template: str, values: Mapping[str, str]) -> str:
    """`envsubst` restricted to the SORI_EDGE_* names; every one must have a value."""
    missing = sorted(set(PLACEHOLDER.findall(template)) - set(values))
    assert not missing, f"no value for {missing}"
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


@dataclass
class Edge:
    http_block: str  # for real_clients.nginx: includes the rendered file
    port: int
    tls_port: int
    access_log: Path


def render_edge(work: Path, *, origin_port: int, port: int, tls_port: int, cert: Path,
                key: Path, download_slice: str | None = None) -> Edge:
    """deploy/nginx rendered into `work` (conf dir, cache dir, access log); with
    `download_slice`, downloads are cached in slices of that size instead of 1m (so a
    short test file spans several)."""
    conf_dir = work / "conf"
    conf_dir.mkdir(parents=True, exist_ok=True)
    (work / "cache").mkdir(exist_ok=True)
    access_log = work / "edge-access.log"
    values = {
        "SORI_EDGE_ORIGIN": f"127.0.0.1:{origin_port}",
        "SORI_EDGE_LISTEN": f"127.0.0.1:{port}",
        "SORI_EDGE_TLS_LISTEN": f"127.0.0.1:{tls_port}",
        "SORI_EDGE_SERVER_NAME": "localhost",
        "SORI_EDGE_CACHE_DIR": str(work / "cache"),
        "SORI_EDGE_CACHE_MAX_SIZE": "1g",
        "SORI_EDGE_CONF_DIR": str(conf_dir),
        "SORI_EDGE_TLS_CERT": str(cert),
        "SORI_EDGE_TLS_KEY": str(key),
        "SORI_EDGE_ACCESS_LOG": str(access_log),
    }
    (conf_dir / "sori-edge.conf").write_text(render(TEMPLATE.read_text(), values))
    locations = LOCATIONS.read_text()
    assert not PLACEHOLDER.search(locations), "the locations file takes no values"
    if download_slice is not None:
        assert locations.count("slice 1m;") == 1
        locations = locations.replace("slice 1m;", f"slice {download_slice};")
    (conf_dir / LOCATIONS.name).write_text(locations)
    return Edge(f"    include {conf_dir / 'sori-edge.conf'};\n", port, tls_port, access_log)


def self_signed(work: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 / localhost, made by openssl."""
    openssl = require_tool("openssl", "apt-get install openssl (`make install-test` does)")
    cert, key = work / "edge.pem", work / "edge.key"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert),
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class Client(HttpClient):
    """One keep-alive connection to the edge from a loopback address of its own
    (127.0.0.2, 127.0.0.3, ...), so the edge and the origin see ten different users."""

    def __init__(self, base_port: int, source: str, timeout: float = 20.0) -> None:
        super().__init__(f"http://127.0.0.1:{base_port}", timeout, source)


def origin_log(log: Path) -> list[dict[str, object]]:
    """The origin's JSON access-log lines so far (after its batch has been flushed)."""
    time.sleep(ACCESS_LOG_FLUSH)
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith('{"ts":'):
            out.append(json.loads(line))
    return out


def origin_fetches(log: Path, prefix: str) -> Counter[str]:
    """GETs/HEADs that reached the origin for paths under `prefix`, counted per object:
    the token (logged redacted by the origin) taken out of the path, so all users'
    requests of one object count together."""
    counts: Counter[str] = Counter()
    for entry in origin_log(log):
        path = str(entry["path"])
        if path.startswith(prefix) and entry["method"] in ("GET", "HEAD"):
            counts[path.replace("/~redacted/", "/", 1)] += 1
    return counts
