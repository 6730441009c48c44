"""[packager] max_duration applies to a live stream: past it, chunks are refused with a
clear 400 and the stream is sealed with what it had (real ffmpeg, the origin on a socket)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from llhls_rules import check_vod_media
from test_live_support import LiveHttp, in_process, live_config

from storage.local import LocalStore

RATE = 24_000
LIMIT = 2.0


async def test_a_stream_over_max_duration_is_refused_and_sealed(tmp_path: Path,
                                                               origin_client: Any) -> None:
    cfg = live_config(tmp_path)
    cfg = dataclasses.replace(cfg, packager=dataclasses.replace(cfg.packager,
                                                                max_duration=LIMIT))
    store = LocalStore(tmp_path / "media")
    client, base = await in_process(origin_client, store, cfg)
    http = LiveHttp(client.session, base)
    await http.start("long", {"codec": "pcm_s16le", "sample_rate": RATE, "channels": 1})
    t = np.arange(RATE * 5) / RATE
    pcm = (np.sin(2 * np.pi * 220 * t) * 0.2 * 32767).astype("<i2").tobytes()
    step = RATE * 2 // 5  # 200 ms
    refused = None
    for seq, at in enumerate(range(0, len(pcm), step)):
        res = await http.chunk("long", seq, pcm[at:at + step])
        if res.status != 200:
            refused = res
            break
    assert refused is not None, "5 s were taken by a stream limited to 2 s"
    assert refused.status == 400, (refused.status, refused.body)
    assert "max_duration" in refused.json()["error"]
    rec = await http.wait_ready("long", 20)
    # everything taken up to the chunk that crossed the limit, plus the end padding
    assert LIMIT <= rec["duration"] <= LIMIT + 0.2 + 0.6, rec["duration"]
    assert rec["live"]["reason"] == "error"
    for rung in rec["renditions"]:
        text = (tmp_path / "media" / "long" / "v" / rec["version"] / rung["id"]
                / "index.m3u8").read_text()
        check_vod_media(text, target_duration=2)
