"""Prometheus metrics of one origin application.

Each app owns its own `CollectorRegistry` (tests stay independent, and two
apps in one process do not collide). Other modules add their metrics to the
same registry through `metrics_of(app).registry`, e.g. the jobs module::

    from prometheus_client import Gauge
    jobs = Gauge("sori_jobs", "Jobs by state", ["state"], registry=metrics_of(app).registry)

With several worker processes, the worker that answers a scrape reports every live
worker's metrics, each sample labelled `worker` (origin.observe.metrics_share).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from origin.http import headers as h

if TYPE_CHECKING:
    from origin.observe.metrics_share import SharedMetrics

ROUTE_MEDIA = "media"
ROUTE_API = "api"
ROUTE_PAGE = "page"
ROUTE_OPS = "ops"

_OPS_PATHS = frozenset(("/healthz", "/readyz", "/metrics"))

_STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                  5.0, 10.0)


def route_class(path: str) -> str:
    if path.startswith("/assets/"):
        return ROUTE_MEDIA
    if path.startswith("/v1/"):
        return ROUTE_API
    if path in _OPS_PATHS:
        return ROUTE_OPS
    return ROUTE_PAGE


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.requests = Counter("sori_http_requests", "HTTP requests by route class and status",
                                ["route", "status"], registry=reg)
        self.bytes_sent = Counter("sori_http_response_bytes",
                                  "Response body bytes sent, by route class", ["route"],
                                  registry=reg)
        self.cache_hits = Counter("sori_cache_hits", "Media requests answered from memory",
                                  registry=reg)
        self.cache_misses = Counter("sori_cache_misses",
                                    "Media requests that had to ask the store", registry=reg)
        self.cache_bytes = Gauge("sori_cache_bytes", "Bytes held by the object cache",
                                 registry=reg)
        self.store_latency = Histogram("sori_store_latency_seconds",
                                       "Latency of store operations made by the origin",
                                       ["op"], buckets=_STORE_BUCKETS, registry=reg)
        self.store_errors = Counter("sori_store_errors", "Store operations that failed",
                                    ["op"], registry=reg)
        # Label children are looked up once; .labels() takes a lock and hashes every time.
        self._req_children: dict[tuple[str, int], Counter] = {}
        self._bytes_children: dict[str, Counter] = {}
        self._latency_children: dict[str, Histogram] = {}
        # With several workers: every worker's metrics in one answer (origin.observe.metrics_share).
        self.shared: SharedMetrics | None = None
        # Listening analytics (origin.analytics sets it): the recorder's counts, read at
        # each scrape, and the events waiting in its queue.
        self.analytics: Callable[[], tuple[Mapping[str, int], int]] | None = None
        reg.register(_AnalyticsCollector(self))

    def observe_request(self, route: str, status: int, nbytes: int) -> None:
        child = self._req_children.get((route, status))
        if child is None:
            child = self._req_children[(route, status)] = self.requests.labels(route, str(status))
        child.inc()
        if nbytes:
            b = self._bytes_children.get(route)
            if b is None:
                b = self._bytes_children[route] = self.bytes_sent.labels(route)
            b.inc(nbytes)

    def observe_store(self, op: str, seconds: float) -> None:
        child = self._latency_children.get(op)
        if child is None:
            child = self._latency_children[op] = self.store_latency.labels(op)
        child.observe(seconds)

    @contextmanager
    def time_store(self, op: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        except Exception:
            self.store_errors.labels(op).inc()
            raise
        finally:
            self.observe_store(op, time.perf_counter() - t0)

    def render(self) -> bytes:
        if self.shared is not None:
            return self.shared.render()
        return generate_latest(self.registry)


class _AnalyticsCollector:
    """sori_analytics_events_total{result} and sori_analytics_queue_events, from the
    recorder's own counters (kept by its writer thread; a scrape only reads them)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        source = self.metrics.analytics
        if source is None:
            return
        counts, queued = source()
        events = CounterMetricFamily(
            "sori_analytics_events", "Analytics events (hits and CMCD reports) by outcome: "
            "accepted into the queue, written to the database, dropped (queue full or "
            "database down), error (could not be read)", labels=["result"])
        for result, n in counts.items():
            events.add_metric([result], float(n))
        yield events
        yield GaugeMetricFamily("sori_analytics_queue_events",
                                "Analytics events waiting for the writer", value=float(queued))


METRICS_KEY = web.AppKey("sori.metrics", Metrics)


def metrics_of(app: web.Application) -> Metrics:
    """The metrics of an app made by `origin.app.create_app` (add yours to `.registry`)."""
    return app[METRICS_KEY]


async def handle_metrics(request: web.Request) -> web.Response:
    body = metrics_of(request.app).render()
    resp = web.Response(body=body, headers={h.CACHE_CONTROL: h.NO_STORE})
    resp.headers[h.CONTENT_TYPE] = CONTENT_TYPE_LATEST
    return resp
