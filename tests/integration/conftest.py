"""Fixtures shared by the real-client tests (test_cdn, test_clients_*): the session's
packaged library, and `sori serve` over it for one test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from real_clients import Library, Origin, library, local_env, serve


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Library:
    """Speech and a video clip packaged by the CLI into a local store (once a session)."""
    return library(tmp_path_factory)


@pytest.fixture(scope="module")
def origin(lib: Library, request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Origin]:
    """`sori serve` over `lib`, for the tests of one module."""
    log = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]) / "serve.log"
    with serve(local_env(lib.root), log) as o:
        yield o
