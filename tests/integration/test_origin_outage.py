"""A store that stops answering gives 503 + Retry-After, and the origin recovers by itself."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from test_origin_support import ASSET, INIT, SEGMENT, publish

from origin.app import create_app
from sori.config import Config
from storage import S3Store

SEG_URL = f"/assets/{ASSET}/{SEGMENT}"


async def test_s3_outage_and_recovery(s3_outage_server: Any, origin_client: Any) -> None:
    bucket = f"sori-outage-{uuid.uuid4().hex[:12]}"
    store = S3Store(s3_outage_server.info.config(bucket))
    try:
        objects = await publish(store)
        client = await origin_client(create_app(Config(), store))
        async with client.get(SEG_URL) as resp:  # now in the origin's memory
            assert resp.status == 200

        s3_outage_server.stop()
        # Objects the origin does not hold: 503, not cached, with Retry-After.
        for url in (f"/assets/{ASSET}/{INIT}", f"/assets/{ASSET}/master.m3u8"):
            async with client.get(url) as resp:
                assert resp.status == 503, url
                assert resp.headers["Retry-After"] == "5"
                assert resp.headers["Cache-Control"] == "no-store"
                assert resp.headers["Access-Control-Allow-Origin"] == "*"
                assert "error" in await resp.json()
        async with client.get("/readyz") as resp:
            assert resp.status == 503
        # A cached immutable segment still plays while the store is away.
        async with client.get(SEG_URL) as resp:
            assert resp.status == 200 and await resp.read() == objects[SEGMENT]
        async with client.get("/healthz") as resp:
            assert resp.status == 200

        s3_outage_server.start()  # moto forgets everything (a MinIO would not): set up again
        s3_outage_server.info.client().make_bucket(bucket)
        await publish(store)
        for _ in range(50):
            async with client.get("/readyz") as resp:
                if resp.status == 200:
                    break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the origin did not become ready again")
        async with client.get(f"/assets/{ASSET}/{INIT}") as resp:
            assert resp.status == 200
            assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    finally:
        await store.close()


async def test_s3_that_hangs_gives_503(s3_outage_server: Any, origin_client: Any) -> None:
    store = S3Store(s3_outage_server.info.config(f"sori-hang-{uuid.uuid4().hex[:12]}"))
    try:
        await publish(store)
        client = await origin_client(create_app(Config(), store))
        s3_outage_server.pause()  # accepts connections, never answers
        try:
            async with client.get(f"/assets/{ASSET}/{INIT}") as resp:
                assert resp.status == 503
                assert resp.headers["Retry-After"] == "5"
        finally:
            s3_outage_server.resume()
        async with client.get(f"/assets/{ASSET}/{INIT}") as resp:
            assert resp.status == 200
    finally:
        await store.close()
