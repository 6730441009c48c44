"""Running the origin: `serve(cfg)` until SIGINT/SIGTERM, then a graceful shutdown.

With `[origin] workers = N > 1` (the default 0 is one per CPU core, like nginx's
`worker_processes auto`) the parent forks N worker processes that each bind host:port
with SO_REUSEPORT, so the kernel spreads connections over them; the parent only
supervises (forwards the stop signal, restarts a worker that dies; a worker dies with
its parent, even a SIGKILLed one). Each worker opens its own store and event loop
(uvloop when installed). The workers share a temporary directory the parent makes,
through which any of them answers /metrics for all (origin.observe.metrics_share).

Every process also listens on an internal address (`[origin] peer_host`, default
127.0.0.1, an ephemeral port) where other workers and replicas reach it for the live
streams it owns (origin.live.peers): a live stream is answered by any worker.

On SIGINT/SIGTERM a worker stops accepting, lets in-flight responses finish
for up to SHUTDOWN_TIMEOUT seconds, runs the app's cleanup hooks and closes
its store.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from origin.app import create_app
from origin.fast_lane import OriginRunner
from origin.live import advertise
from settings import Config, ConfigError
from storage import open_store

log = logging.getLogger("sori.origin")

SHUTDOWN_TIMEOUT = 15.0  # seconds for in-flight responses to finish
BACKLOG = 2048
_EARLY_EXIT = 3.0  # a worker dying this soon after start is a start-up failure
_LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


class UnsafeConfig(ConfigError):
    """The configuration would expose write endpoints without authentication."""


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(cfg: Config) -> None:
    """CONTRACT §4: refuse to start with write endpoints open on a non-loopback host
    and no API key."""
    host = cfg.origin.host
    if not cfg.security.api_keys and not is_loopback(host):
        raise UnsafeConfig(
            f"origin.host: {host!r} is not a loopback address and security.api_keys is "
            "empty, so anyone could upload and delete assets; set an API key "
            "(SORI_SECURITY_API_KEYS='[\"...\"]') or listen on 127.0.0.1")
    if cfg.origin.workers > 1 and cfg.origin.port == 0:
        raise ConfigError("origin.port: 0 (any free port) needs origin.workers = 1")


def worker_count(cfg: Config) -> int:
    """How many processes serve: `workers`, 0 meaning one per core (one when the port is
    0, which the processes could not share)."""
    if cfg.origin.workers == 0 and cfg.origin.port == 0:
        return 1
    return cfg.origin.worker_count()


def serve(cfg: Config) -> int:
    """`sori serve`: run until SIGINT/SIGTERM; returns the process exit code."""
    setup_logging(cfg)
    try:
        run(cfg)
    except ConfigError as e:
        print(f"sori: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # e.g. the port is taken
        print(f"sori: cannot serve on {cfg.origin.host}:{cfg.origin.port}: {e.strerror or e}",
              file=sys.stderr)
        return 1
    return 0


def run(cfg: Config) -> None:
    """Serve until SIGINT/SIGTERM. Raises UnsafeConfig/ConfigError before binding."""
    check_exposure(cfg)
    workers = worker_count(cfg)
    if workers <= 1:
        _run_loop(cfg, reuse_port=False)
    else:
        _supervise(cfg, workers)


def setup_logging(cfg: Config) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    access = logging.getLogger("sori.access")
    if cfg.origin.access_log and not access.handlers:
        # origin.observe.accesslog batches lines itself (a record carries many), so a plain
        # stream handler writes them.
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(stream)
        access.setLevel(logging.INFO)
        access.propagate = False


# --- one process -----------------------------------------------------------------------

def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _run_loop(cfg: Config, *, reuse_port: bool, shared: Path | None = None) -> None:
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve_async(cfg, reuse_port=reuse_port, shared=shared))


async def serve_async(cfg: Config, *, reuse_port: bool = False,
                      stop: asyncio.Event | None = None,
                      started: Callable[[list[str]], Any] | None = None,
                      shared: Path | None = None) -> None:
    """Serve in the running loop until `stop` is set (or SIGINT/SIGTERM arrives).
    `shared`: the directory the workers of one origin share (origin.observe.metrics_share)."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)  # fails outside the main thread
    store = open_store(cfg.storage)
    try:
        app = create_app(cfg, store, shared_metrics=shared)
        runner = OriginRunner(app, handle_signals=False, access_log=None,
                              shutdown_timeout=SHUTDOWN_TIMEOUT)
        await runner.setup()
        try:
            peer = await _start_peer_site(runner, cfg)
            advertise(app, f"http://{_fmt(peer)}")
            site = web.TCPSite(runner, cfg.origin.host, cfg.origin.port, backlog=BACKLOG,
                               reuse_port=reuse_port or None)
            await site.start()
            addresses = [f"http://{_fmt(a)}/" for a in runner.addresses if a != peer]
            log.info("sori origin pid %d serving on %s (peers: %s)", os.getpid(),
                     ", ".join(addresses), _fmt(peer))
            if started is not None:
                started(addresses)
            await stop.wait()
            log.info("pid %d shutting down (in-flight responses get %.0f s)", os.getpid(),
                     SHUTDOWN_TIMEOUT)
        finally:
            await runner.cleanup()  # flushes the access log (origin.app's on_cleanup)
    finally:
        await store.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)


async def _start_peer_site(runner: web.AppRunner, cfg: Config) -> Any:
    """The internal address other workers and replicas forward live requests to: the same
    application (same checks: keys, tokens) on `peer_host` and an ephemeral port."""
    host = cfg.origin.peer_host or "127.0.0.1"
    before = set(map(repr, runner.addresses))
    await web.TCPSite(runner, host, 0, backlog=BACKLOG).start()
    return next(a for a in runner.addresses if repr(a) not in before)


def _fmt(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)


# --- several processes -----------------------------------------------------------------

def _die_with_parent() -> None:
    """Linux: this worker gets SIGKILL when the supervisor dies, however it dies, so a
    killed origin never leaves workers holding its port (and its live streams)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


def _worker(cfg: Config, shared: Path, parent: int) -> None:
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before prctl
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent forwards SIGTERM
    setup_logging(cfg)
    _run_loop(cfg, reuse_port=True, shared=shared)


def _supervise(cfg: Config, count: int) -> None:
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ConfigError("origin.workers: more than 1 needs SO_REUSEPORT (Linux, BSD)")
    ctx = multiprocessing.get_context("fork")
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    workers: dict[int, tuple[multiprocessing.process.BaseProcess, float]] = {}
    shared = Path(tempfile.mkdtemp(prefix="sori-workers-"))

    def start(slot: int) -> None:
        p = ctx.Process(target=_worker, args=(cfg, shared, os.getpid()),
                        name=f"sori-worker-{slot}",
                        daemon=False)
        p.start()
        workers[slot] = (p, time.monotonic())

    log.info("%d workers (live streams are answered by any of them: origin.live.peers)",
             count)
    try:
        for slot in range(count):
            start(slot)
        while not stopping:
            time.sleep(0.2)
            for slot, (p, started_at) in list(workers.items()):
                if p.is_alive() or stopping:
                    continue
                if time.monotonic() - started_at < _EARLY_EXIT:
                    raise OSError(f"worker {slot} exited with {p.exitcode} at start-up "
                                  "(see the log above)")
                log.warning("worker %s (pid %s) exited with %s; restarting", slot, p.pid,
                            p.exitcode)
                start(slot)
    finally:
        for p, _ in workers.values():
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + SHUTDOWN_TIMEOUT + 5.0
        for p, _ in workers.values():
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join()
        shutil.rmtree(shared, ignore_errors=True)
        for s, handler in previous.items():
            signal.signal(s, handler)
