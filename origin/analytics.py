"""Listening analytics in the origin (issue 13, CONTRACT §4): recording, the CMCD collector
and the two report endpoints.

    POST    /v1/cmcd                       CMCD v2 event reports (one a line) or a v1 report in
                                           the `CMCD=` query; 204. No API key (players send
                                           it), CORS, 64 KB a body, a rate per client
    OPTIONS /v1/cmcd                       its CORS preflight
    GET     /v1/analytics/summary          downloads, listeners, bytes, assets, countries, apps
    GET     /v1/analytics/assets/{id}      the same for one asset, with renditions and QoE

Both reports take `from` and `to` (ISO dates, UTC days, inclusive; by default the last 30
days ending today), answer `?format=csv` (or `Accept: text/csv`) with a CSV attachment,
and need the API key when `[security] api_keys` are set: listening figures are not
public. An asset never seen gives zeros (a deleted asset keeps its history, and the
answer does not tell which ids exist). With `[analytics] enabled = false` nothing is
recorded and the four routes answer 404 "analytics disabled".

Each worker process starts an analytics writer process of its own (with its first hit)
and feeds it through a pipe (analytics.writer.link, .process): media responses reach the link through
origin.observe.hits, and classifying, hashing and writing happen in the writer process,
so they never take the interpreter lock from the event loop that serves. Reports are read
in a thread (the database calls block) after this worker's events are written, so a
report includes what this worker served until the request; other workers' writers
flush on their own within a second.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from aiohttp import hdrs, web

from analytics import cmcd
from analytics.db import DatabaseDown, open_database
from analytics.reports import Reports, parse_period
from analytics.writer.link import WriterLink
from manifests import layout
from origin import auth
from origin.access.client_ip import client_address, networks
from origin.app import HITS_KEY, MEDIA_KEY
from origin.errors import json_error, register_error
from origin.http import headers as h
from origin.http.cors import PREFLIGHT_MAX_AGE, CorsPolicy
from origin.http.object_cache import LruDict
from origin.keys import CONFIG_KEY, STORE_KEY
from origin.observe.hits import Hits
from origin.observe.metrics import metrics_of
from settings import Config

log = logging.getLogger("sori.analytics")

CMCD_PATH = "/v1/cmcd"
MAX_BODY = 64 * 1024  # bytes of one POSTed report body
REPORT_TYPES = frozenset(("text/cmcd", "application/cmcd", "text/plain"))
REPORTS_PER_MINUTE = 1200  # report lines one client address may send in a minute
TRACKED_CLIENTS = 65536
FLUSH_WAIT = 5.0  # seconds a report waits for this worker's events to be written (the
#                   writer process may have to start first; not when the database is down)
CLOSE_WAIT = 5.0
DISABLED = "analytics disabled: set [analytics] enabled = true"
CSV_TYPE = "text/csv; charset=utf-8"
_PREFLIGHT_HEADERS = "content-type, " + ", ".join(n.lower() for n in cmcd.HEADERS)

register_error(DatabaseDown, 503)

RECORDER_KEY = web.AppKey("sori.analytics.recorder", WriterLink)
REPORTS_KEY = web.AppKey("sori.analytics.reports", Reports)


class Collector:
    """The CMCD report endpoint's state: CORS and the per-client rate."""

    def __init__(self, cfg: Config) -> None:
        self.cors = CorsPolicy(cfg.origin.cors_origins)
        self.trusted = networks(cfg.origin.trusted_proxies)
        self._sent: LruDict[list[float]] = LruDict(TRACKED_CLIENTS)  # [window start, lines]

    def allow(self, client: str, lines: int, now: float) -> bool:
        """Whether `client` may send `lines` more reports this minute (counted if so)."""
        window = self._sent.get(client)
        if window is None or now - window[0] >= 60.0:
            window = [now, 0.0]
            self._sent.put(client, window)
        if window[1] + lines > REPORTS_PER_MINUTE:
            return False
        window[1] += lines
        return True


COLLECTOR_KEY = web.AppKey("sori.analytics.collector", Collector)


def setup(app: web.Application) -> None:
    cfg = app[CONFIG_KEY]
    r = app.router
    r.add_get("/v1/analytics/summary", summary, name="analytics-summary")
    r.add_get("/v1/analytics/assets/{id}", asset_report, name="analytics-asset")
    r.add_post(CMCD_PATH, collect, name="analytics-cmcd")
    r.add_route("OPTIONS", CMCD_PATH, preflight)
    app[COLLECTOR_KEY] = Collector(cfg)
    if not cfg.analytics.enabled:
        return
    recorder = app[RECORDER_KEY] = WriterLink(cfg.analytics)
    # Reports read through a connection of their own (the writer process has its own).
    reports = app[REPORTS_KEY] = Reports(open_database(cfg.analytics.database))
    media = app[MEDIA_KEY]
    hits = app[HITS_KEY] = Hits(recorder, app[STORE_KEY], media.guard.trusted)
    media.on_record = hits.observe
    metrics_of(app).analytics = lambda: (_results(recorder), recorder.queued())

    async def start(_app: web.Application) -> None:
        # Never fails the origin: a database that cannot be opened shows as drops.
        await recorder.start()

    async def close(_app: web.Application) -> None:
        await hits.drain()
        # The writer process drops (and counts) at once what a database that is down
        # would only make the shutdown wait for.
        await recorder.close(CLOSE_WAIT)
        await asyncio.to_thread(reports.db.close)

    app.on_startup.append(start)
    app.on_cleanup.append(close)


def _results(recorder: WriterLink) -> dict[str, int]:
    """The recorder's counts under the metric's `result` label values."""
    return {"accepted": recorder.accepted, "written": recorder.written,
            "dropped": recorder.dropped, "error": recorder.errors}


# --- the CMCD collector ----------------------------------------------------------------------

async def collect(request: web.Request) -> web.Response:
    """One report per non-empty line of the body, and one for a `CMCD=` query."""
    collector = request.app[COLLECTOR_KEY]
    resp = await _collect(request, collector)
    collector.cors.apply(request, resp)
    resp.headers[h.CACHE_CONTROL] = h.NO_STORE
    return resp


async def _collect(request: web.Request, collector: Collector) -> web.Response:
    recorder = request.app.get(RECORDER_KEY)
    if recorder is None:
        return json_error(404, DISABLED)
    if request.content_length is not None and request.content_length > MAX_BODY:
        return json_error(413, f"a CMCD report body is at most {MAX_BODY} bytes")
    body = await _read_body(request)
    if body is None:
        return json_error(413, f"a CMCD report body is at most {MAX_BODY} bytes")
    lines: list[str] = []
    if body.strip():
        if request.content_type not in REPORT_TYPES:
            return json_error(415, "send CMCD reports as text/cmcd, application/cmcd or "
                                   "text/plain: one CMCD key=value list a line")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return json_error(400, "the report body is not UTF-8 text")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if len(lines) > cmcd.MAX_REPORTS:
            return json_error(413, f"at most {cmcd.MAX_REPORTS} reports a request")
    query = request.query.get("CMCD")
    if query is not None:
        lines.append(query)
    if not lines:
        return json_error(400, "no CMCD report: send one key=value list a line in the body "
                               "(or as the CMCD= query)")
    for i, line in enumerate(lines, 1):
        if cmcd.parse(line) is None:
            return json_error(400, f"report {i} is not CMCD data (a comma-separated list "
                                   "of key=value pairs with known keys)")
    headers = request.headers
    client = client_address(request.remote, headers.get(hdrs.X_FORWARDED_FOR),
                            collector.trusted) or ""
    now = time.time()
    if not collector.allow(client, len(lines), time.monotonic()):
        return json_error(429, "too many CMCD reports from this address: "
                               f"at most {REPORTS_PER_MINUTE} a minute",
                          headers={h.RETRY_AFTER: "60"})
    ua = headers.get(h.USER_AGENT) or ""
    for line in lines:
        recorder.submit_report((now, client, ua, line, None))  # analytics.events.Report's fields
    return web.Response(status=204)


async def _read_body(request: web.Request) -> bytes | None:
    """The body, or None when it is longer than MAX_BODY (reading stops there)."""
    data = bytearray()
    while True:
        chunk = await request.content.read(MAX_BODY + 1 - len(data))
        if not chunk:
            return bytes(data)
        data += chunk
        if len(data) > MAX_BODY:
            return None


async def preflight(request: web.Request) -> web.Response:
    """CORS preflight for a player page on another origin posting text/cmcd."""
    cors = request.app[COLLECTOR_KEY].cors
    resp = web.Response(status=204, headers={
        h.ACCESS_CONTROL_ALLOW_METHODS: "POST, OPTIONS",
        h.ACCESS_CONTROL_ALLOW_HEADERS: _PREFLIGHT_HEADERS,
        h.ACCESS_CONTROL_MAX_AGE: PREFLIGHT_MAX_AGE,
        h.ALLOW: "POST, OPTIONS",
    })
    cors.apply(request, resp)
    return resp


# --- reports -------------------------------------------------------------------------------

async def summary(request: web.Request) -> web.Response:
    return _no_store(await _report(request, None))


async def asset_report(request: web.Request) -> web.Response:
    asset_id = request.match_info["id"]
    if not layout.is_valid_asset_id(asset_id):
        return _no_store(json_error(400, f"invalid asset id {asset_id!r}"))
    return _no_store(await _report(request, asset_id))


def _no_store(resp: web.Response) -> web.Response:
    """Every answer of the reports, errors included (a 404 is cacheable by default)."""
    resp.headers[h.CACHE_CONTROL] = h.NO_STORE
    return resp


async def _report(request: web.Request, asset_id: str | None) -> web.Response:
    reports = request.app.get(REPORTS_KEY)
    if reports is None:
        return json_error(404, DISABLED)
    refused = auth.check(request, request.app[CONFIG_KEY].security.api_keys, write=True)
    if refused is not None:
        return refused
    try:
        first, last = parse_period(request.query.get("from"), request.query.get("to"))
    except ValueError as e:
        return json_error(400, str(e))
    csv = wants_csv(request)
    if isinstance(csv, str):
        return json_error(400, csv)
    await request.app[HITS_KEY].settle(FLUSH_WAIT)
    await request.app[RECORDER_KEY].flush(FLUSH_WAIT)
    if csv:
        name = "summary" if asset_id is None else f"asset-{asset_id}"
        text = await (asyncio.to_thread(reports.summary_csv, first, last) if asset_id is None
                      else asyncio.to_thread(reports.asset_csv, asset_id, first, last))
        return web.Response(body=text.encode("utf-8"), headers={
            h.CONTENT_TYPE: CSV_TYPE, h.CACHE_CONTROL: h.NO_STORE,
            "Content-Disposition": f'attachment; filename="sori-{name}-{first}-{last}.csv"'})
    if asset_id is None:
        data: dict[str, Any] = await asyncio.to_thread(reports.summary, first, last)
    else:
        data = await asyncio.to_thread(reports.asset, asset_id, first, last)
    return web.Response(body=json.dumps(data, ensure_ascii=False).encode(), headers={
        h.CONTENT_TYPE: h.JSON_TYPE, h.CACHE_CONTROL: h.NO_STORE})


def wants_csv(request: web.Request) -> bool | str:
    """True for CSV (`?format=csv`, or `Accept: text/csv` without a format), False for
    JSON, or the error message for another format."""
    fmt = request.query.get("format")
    if fmt is not None:
        if fmt.lower() not in ("json", "csv"):
            return f"format: {fmt[:20]!r} is neither json nor csv"
        return fmt.lower() == "csv"
    accept = request.headers.get(hdrs.ACCEPT, "")
    return "text/csv" in accept.lower()
