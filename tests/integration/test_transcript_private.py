"""A private asset's transcript, captions and chapters: the subtitles rendition plays through
a signed playlist URL (its relative URIs keep the token), the transcript and chapters URLs
come signed from playback-url and /playback/{id}, and nothing of them answers unsigned."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from test_api_support import PACKAGER
from test_transcript_support import SENTENCES, as_json, timed_speech

from origin.app import create_app
from packager.pipeline import package
from packager.transcript.parse import parse
from settings import Config, OriginConfig, SecurityConfig
from storage.base import Store

KEYS = {"k1": "a-signing-secret-for-transcripts-01"}
WRITE_KEY = "write-key-transcripts"


def _config(tmp_path: Path) -> Config:
    return Config(
        origin=dataclasses.replace(OriginConfig(), upload_dir=str(tmp_path / "uploads")),
        packager=PACKAGER,
        security=dataclasses.replace(SecurityConfig(), signing_keys=KEYS, api_keys=(WRITE_KEY,),
                                     token_failures_per_minute=0),
    ).validate()


async def test_private_transcript_is_signed(local_store: Store, tmp_path: Path,
                                            origin_client: Any) -> None:
    wav, cues = timed_speech(tmp_path / "speech", SENTENCES[:4])
    await package(wav, local_store, PACKAGER, asset_id="secret", access="private",
                  transcript=parse(as_json(cues).encode()))
    client = await origin_client(create_app(_config(tmp_path), local_store))
    auth = {"Authorization": f"Bearer {WRITE_KEY}"}
    rec = await (await client.get("/v1/assets/secret", headers=auth)).json()
    for name in ("transcript", "transcript_text", "chapters"):
        assert (await client.get(rec[name])).status == 403, name

    resp = await client.post("/v1/assets/secret/playback-url", json={"ttl": 300}, headers=auth)
    urls = await resp.json()
    assert resp.status == 200, urls
    for name in ("transcript", "transcript_text", "chapters"):
        got = await client.get(urls[name])
        assert got.status == 200, (name, urls[name])
    assert json.loads(await (await client.get(urls["chapters"])).text())[0]["titles"]
    page = await (await client.get("/playback/secret", headers=auth)).json()
    assert (await client.get(page["transcript"])).status == 200

    # the subtitles rendition through the signed master playlist's relative URIs
    master_url = urls["hls"]
    master = await (await client.get(master_url)).text()
    subs = master.split("TYPE=SUBTITLES", 1)[1].split('URI="', 1)[1].split('"', 1)[0]
    base = master_url.rsplit("/", 1)[0]
    playlist = await client.get(f"{base}/{subs}")
    assert playlist.status == 200
    first = next(ln for ln in (await playlist.text()).splitlines() if ln.endswith(".vtt"))
    seg = await client.get(f"{base}/{subs.rsplit('/', 1)[0]}/{first}")
    assert seg.status == 200 and (await seg.text()).startswith("WEBVTT\nX-TIMESTAMP-MAP=")
    assert (await client.get(f"/assets/secret/{subs}")).status == 403
