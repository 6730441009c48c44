"""One `/metrics` answer for all the worker processes of an origin (`[origin] workers > 1`).

    shared = SharedMetrics(Path(tmpdir), registry)   # tmpdir: made by the supervisor
    await shared.run()     # in the background: publishes this worker's metrics every second
    shared.render()        # every live worker's metrics, each sample labelled worker="pid"

Behind one port the kernel hands a scrape to any worker, so each worker writes a snapshot
of its registry to `{root}/{pid}.json` every PUBLISH_EVERY seconds (and at once when it
answers a scrape), and the worker that answers merges the snapshots of the workers that
are still running. Each sample gets a `worker` label, so a counter stays a counter of one
process (sum them in the query: `sum without (worker) (...)`); a restarted worker is a new
series, as a restarted process would be. Snapshots of other workers are up to
PUBLISH_EVERY seconds old.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from origin.packaging.job_board import process_alive, replace_file

log = logging.getLogger("sori.origin")

PUBLISH_EVERY = 1.0  # seconds
LABEL = "worker"


def snapshot(registry: CollectorRegistry) -> list[dict[str, Any]]:
    """The registry's metric families as plain data."""
    return [{"name": m.name, "documentation": m.documentation, "type": m.type, "unit": m.unit,
             "samples": [[s.name, s.labels, s.value] for s in m.samples]}
            for m in registry.collect()]


def merge(snapshots: dict[int, list[dict[str, Any]]]) -> list[Metric]:
    """Families of every worker's snapshot, by name, each sample labelled with its worker."""
    families: dict[str, Metric] = {}
    for pid in sorted(snapshots):
        for fam in snapshots[pid]:
            metric = families.get(fam["name"])
            if metric is None:
                metric = families[fam["name"]] = Metric(fam["name"], fam["documentation"],
                                                        fam["type"], fam["unit"])
            for name, labels, value in fam["samples"]:
                metric.add_sample(name, {**labels, LABEL: str(pid)}, value)
    return list(families.values())


class _Merged(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self.metrics


class SharedMetrics:
    def __init__(self, root: Path, registry: CollectorRegistry) -> None:
        self.root = root
        self.registry = registry
        self.pid = os.getpid()
        self.path = root / f"{self.pid}.json"

    def _write(self, mine: list[dict[str, Any]]) -> None:
        # The snapshot is taken in the loop's thread (some gauges are functions of its
        # state); writing it may happen in another.
        replace_file(self.path, json.dumps(mine).encode(), self.root / f".{self.pid}.tmp")

    def _read_others(self) -> dict[int, list[dict[str, Any]]]:
        found: dict[int, list[dict[str, Any]]] = {}
        for path in self.root.glob("*.json"):
            try:
                pid = int(path.stem)
            except ValueError:
                continue
            if pid == self.pid:
                continue
            if not process_alive(pid):
                with contextlib.suppress(OSError):
                    path.unlink()  # a worker that stopped: its series end
                continue
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(path.read_bytes())
                if isinstance(data, list):
                    found[pid] = data
        return found

    def render(self) -> bytes:
        """The exposition of every live worker (this one's as of now)."""
        mine = snapshot(self.registry)
        try:
            self._write(mine)
            snapshots = self._read_others()
        except OSError as e:
            log.warning("metrics of the other workers unavailable (%s): %s", self.root, e)
            snapshots = {}
        snapshots[self.pid] = mine
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Merged(merge(snapshots)))
        return generate_latest(registry)

    async def run(self) -> None:
        """Publish this worker's snapshot every PUBLISH_EVERY seconds, until cancelled;
        then remove it."""
        try:
            while True:
                try:
                    await asyncio.to_thread(self._write, snapshot(self.registry))
                except OSError as e:
                    log.warning("cannot publish this worker's metrics to %s: %s", self.root, e)
                await asyncio.sleep(PUBLISH_EVERY)
        finally:
            with contextlib.suppress(OSError):
                self.path.unlink()
