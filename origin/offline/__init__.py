"""Offline bundles: `GET /v1/offline?assets=ID,ID,...` and `sori bundle`, one ZIP of
several assets (progressive file, record, poster, transcript, and an index), planned
whole before its first byte and streamed from the store (issue 14).

    plan.py       pure: the ZIP's byte layout (headers, spans of store objects, ZIP64)
    contents.py   pure: which files, under which names, and the index files
    checksums.py  sizes and CRC-32s of immutable objects, computed once and kept
    sources.py    a request's ids and records checked, its files found, its plan made
    stream.py     any byte range of a plan, read from the store as it is sent
    routes.py     the HTTP endpoint (access, conditionals, ranges)

This module stays light: `sori bundle` imports the planning modules without aiohttp's
routes, and the origin calls `setup(app)` (origin.app.OPTIONAL_MODULES).
"""

from __future__ import annotations

from typing import Any


def setup(app: Any) -> None:
    from origin.offline.routes import register

    register(app)
