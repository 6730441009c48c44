"""Servers the origin benchmark starts and stops: sori, nginx and moto_server, each a
foreground process in its own session, and the copy of a local store into S3."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.package_audio import clean_env, sori_command

ROOT = Path(__file__).resolve().parent.parent
NGINX = "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before {url} "
                               "answered")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM the process, then SIGKILL its process group if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    base_url: str
    log: Path


def launch(name: str, cmd: list[str], port: int, log: Path,
           env: dict[str, str] | None = None) -> Server:
    """Start `cmd` (output to `log`) and wait for its /healthz on 127.0.0.1:port."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/healthz", proc)
    except RuntimeError as e:
        stop(proc)
        raise RuntimeError(f"{e}; log: {log.read_text()[-2000:]}") from None
    return Server(name, proc, base, log)


def start_sori(name: str, port: int, env: dict[str, str], workers: int, access_log: bool,
               work: Path) -> Server:
    log = work / f"{name}.log"
    env = clean_env(SORI_ORIGIN_WORKERS=str(workers),
                    SORI_ORIGIN_ACCESS_LOG="true" if access_log else "false", **env)
    return launch(name, [*sori_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
                  port, log, env=env)


NGINX_CONF = """\
worker_processes auto;
{user}
error_log {prefix}/error.log warn;
pid {prefix}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    open_file_cache max=10000 inactive=60s;
    open_file_cache_valid 60s;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    types {{
        application/vnd.apple.mpegurl m3u8;
        application/dash+xml mpd;
        video/iso.segment m4s;
        audio/mp4 m4a;
        video/mp4 mp4;
        text/vtt vtt;
        image/jpeg jpg jpeg;
        image/png png;
        image/webp webp;
    }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=2048;
        location /assets/ {{
            alias {store}/;
            etag on;
            add_header Cache-Control "public, max-age=31536000, immutable" always;
            add_header Access-Control-Allow-Origin "*" always;
            add_header Access-Control-Expose-Headers "{expose}" always;
        }}
        location = /healthz {{ return 200 "ok"; }}
    }}
}}
"""


def start_nginx(store: Path, port: int, work: Path) -> Server:
    from origin.http.cors import EXPOSED_HEADERS

    prefix = work / "nginx"
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    # As root, nginx would drop its workers to `nobody`; keep them able to read the store.
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(NGINX_CONF.format(prefix=prefix, port=port, store=store.resolve(),
                                      expose=EXPOSED_HEADERS, user=user))
    log = prefix / "stderr.log"
    return launch("nginx", [NGINX, "-c", str(conf), "-p", str(prefix), "-g", "daemon off;"],
                  port, log)


def start_moto(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    exe = Path(sys.executable).parent / "moto_server"
    log = work / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    wait_http(f"http://127.0.0.1:{port}/moto-api/", proc)
    return proc, f"127.0.0.1:{port}"


def s3_env(endpoint: str, bucket: str) -> dict[str, str]:
    return {"SORI_STORAGE_BACKEND": "s3", "SORI_STORAGE_ENDPOINT": endpoint,
            "SORI_STORAGE_BUCKET": bucket, "SORI_STORAGE_ACCESS_KEY": "x",
            "SORI_STORAGE_SECRET_KEY": "x"}


def copy_to_s3(store: Path, endpoint: str, bucket: str) -> int:
    """Upload every object of the local store into the bucket; returns the count."""
    from sori.config import StorageConfig
    from storage import LocalStore, S3Store, content_type_for

    async def run() -> int:
        src = LocalStore(store)
        dst = S3Store(StorageConfig(backend="s3", endpoint=endpoint, bucket=bucket,
                                    access_key="x", secret_key="x"))
        sem = asyncio.Semaphore(8)

        async def one(key: str) -> None:
            path = src.local_path(key)
            assert path is not None
            async with sem:
                await dst.put_file(key, path, content_type_for(key))

        try:
            keys = await src.list("")
            await asyncio.gather(*(one(k) for k in keys))
            return len(keys)
        finally:
            await src.close()
            await dst.close()

    return asyncio.run(run())
