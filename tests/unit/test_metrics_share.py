"""origin.observe.metrics_share: one /metrics answer for several worker processes (real files;
other workers are real processes' pids)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.parser import text_string_to_metric_families

from origin.observe.metrics_share import LABEL, SharedMetrics, merge, snapshot


def _registry(requests: float, cached: float) -> CollectorRegistry:
    reg = CollectorRegistry()
    Counter("sori_http_requests", "HTTP requests", ["route"], registry=reg).labels("media").inc(
        requests)
    Gauge("sori_cache_bytes", "Bytes held", registry=reg).set(cached)
    Histogram("sori_store_latency_seconds", "Latency", buckets=(0.1, 1.0),
              registry=reg).observe(0.5)
    return reg


def _samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text.decode()) for s in fam.samples}


def test_merge_labels_every_sample_with_its_worker() -> None:
    merged = merge({11: snapshot(_registry(3, 100)), 22: snapshot(_registry(5, 200))})
    by_name = {m.name: m for m in merged}
    assert by_name["sori_http_requests"].type == "counter"
    assert by_name["sori_store_latency_seconds"].type == "histogram"
    values = {(s.name, s.labels.get("route"), s.labels[LABEL]): s.value
              for s in by_name["sori_http_requests"].samples if s.name.endswith("_total")}
    assert values == {("sori_http_requests_total", "media", "11"): 3.0,
                      ("sori_http_requests_total", "media", "22"): 5.0}
    assert {s.labels[LABEL] for m in merged for s in m.samples} == {"11", "22"}


def test_render_joins_live_workers_and_drops_stopped_ones(tmp_path: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    try:
        (tmp_path / f"{other.pid}.json").write_text(json.dumps(snapshot(_registry(5, 200))))
        (tmp_path / f"{gone.pid}.json").write_text(json.dumps(snapshot(_registry(7, 300))))
        (tmp_path / "junk.json").write_text("{")  # not a worker's: ignored
        mine = SharedMetrics(tmp_path, _registry(3, 100))
        samples = _samples(mine.render())
        key = ("sori_http_requests_total", (("route", "media"), (LABEL, str(os.getpid()))))
        assert samples[key] == 3.0
        key = ("sori_http_requests_total", (("route", "media"), (LABEL, str(other.pid))))
        assert samples[key] == 5.0
        assert {dict(labels)[LABEL] for _, labels in samples} == {str(os.getpid()),
                                                                 str(other.pid)}
        assert not (tmp_path / f"{gone.pid}.json").exists()  # its series end with it
        assert json.loads((tmp_path / f"{os.getpid()}.json").read_text())  # published
    finally:
        other.kill()
        other.wait()


def test_render_without_the_directory_still_answers_for_this_worker(tmp_path: Path) -> None:
    mine = SharedMetrics(tmp_path / "missing", _registry(3, 100))
    samples = _samples(mine.render())
    assert samples[("sori_http_requests_total",
                    (("route", "media"), (LABEL, str(os.getpid()))))] == 3.0
