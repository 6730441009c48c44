"""The upload endpoint's `transcript` part: a good one is published with the asset (and
served with the right types); a bad one is refused with 400 before any packaging, a cue
past the audio's end fails the job with that message; nothing is left in the store."""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from test_api_support import Api, api_config, uploads_left
from test_transcript_support import as_json, as_srt, timed_speech

from origin.app import create_app
from storage.base import Store

SENTENCES = (("Uploads can carry their transcript.", "Start"),
             ("The origin checks it before packaging.", None))


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, str, str]:
    wav, cues = timed_speech(tmp_path_factory.mktemp("upload-talk"), SENTENCES)
    return wav.read_bytes(), as_json(cues), as_srt(cues)


@pytest.fixture
async def api(local_store: Store, tmp_path: Path, origin_client: Any) -> Api:
    cfg = api_config(tmp_path)
    return Api(await origin_client(create_app(cfg, local_store)), local_store, cfg)


async def _upload(api: Api, media: bytes, *transcripts: tuple[bytes, str],
                  asset_id: str = "talk") -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("id", asset_id)
    for data, name in transcripts:  # before the file: the order of parts must not matter
        form.add_field("transcript", data, filename=name, content_type="application/octet-stream")
    form.add_field("file", media, filename="talk.wav", content_type="audio/wav")
    resp = await api.client.post("/v1/assets", data=form)
    return resp.status, await resp.json()


async def _nothing_left(api: Api, asset_id: str) -> None:
    assert await api.store.list(f"{asset_id}/") == []
    assert uploads_left(api.cfg) == []


@pytest.mark.parametrize("fmt", ["json", "srt"])
async def test_upload_with_a_transcript(api: Api, talk: tuple[bytes, str, str], fmt: str) -> None:
    media, as_json_text, as_srt_text = talk
    text = as_json_text if fmt == "json" else as_srt_text
    status, body = await _upload(api, media, (text.encode(), f"t.{fmt}"))
    assert status == 202, body
    job = await api.finish(body["job"]["id"])
    assert job["state"] == "done", job
    resp = await api.client.get("/v1/assets/talk")
    rec = await resp.json()
    assert set(rec) >= {"transcript", "transcript_text"}
    assert ("chapters" in rec) == (fmt == "json")
    vtt = await api.client.get(rec["transcript"])
    assert vtt.status == 200 and vtt.headers["Content-Type"].startswith("text/vtt")
    assert "Uploads can carry their transcript." in await vtt.text()
    txt = await api.client.get(rec["transcript_text"])
    assert txt.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert (await txt.text()).split() == " ".join(s for s, _c in SENTENCES).split()
    master = await (await api.client.get(rec["hls"])).text()
    assert 'TYPE=SUBTITLES,GROUP-ID="subs"' in master
    subs_uri = master.split('TYPE=SUBTITLES', 1)[1].split('URI="', 1)[1].split('"', 1)[0]
    subs = await api.client.get(f"/assets/talk/{subs_uri}")
    assert subs.status == 200 and "seg_00001.vtt" in await subs.text()
    assert "immutable" in subs.headers["Cache-Control"]
    assert uploads_left(api.cfg) == []


@pytest.mark.parametrize("data, words", [
    (b'[{"start": 0, "end": 2, "text": "a"}, {"start": 1, "end": 3, "text": "b"}]', "overlap"),
    ("1\n00:00:00,500 --> 00:00:01,000\nd\u00e9j\u00e0\n".encode("cp1252"), "not UTF-8"),
    (b"WEBVTT\n\n00:00.500 --> 00:01.000\n<b><i></i></b>\n", "no cue has any text"),
    (b"", "empty"),
    (b'{"cues": "nope"}', "JSON must be a list"),
])
async def test_bad_transcript_is_a_400(api: Api, talk: tuple[bytes, str, str], data: bytes,
                                       words: str) -> None:
    status, body = await _upload(api, talk[0], (data, "t.txt"))
    assert status == 400, body
    assert body["error"].startswith("transcript: ") and words in body["error"]
    await _nothing_left(api, "talk")


async def test_two_transcripts_are_a_400(api: Api, talk: tuple[bytes, str, str]) -> None:
    status, body = await _upload(api, talk[0], (talk[1].encode(), "a.json"),
                                 (talk[1].encode(), "b.json"))
    assert status == 400 and "more than one 'transcript'" in body["error"]
    await _nothing_left(api, "talk")


async def test_cue_plainly_past_the_end_is_a_400(api: Api, talk: tuple[bytes, str, str]) -> None:
    late = json.dumps([{"start": 1, "end": 2, "text": "fine"},
                       {"start": 300, "end": 301, "text": "long after the audio"}]).encode()
    status, body = await _upload(api, talk[0], (late, "late.json"))
    assert status == 400, body
    assert body["error"].startswith("transcript: cue 2 (00:05:00.000 --> 00:05:01.000) ends "
                                    "after the media's end at ")
    await _nothing_left(api, "talk")


async def test_cue_just_past_the_end_fails_the_job(api: Api,
                                                   talk: tuple[bytes, str, str]) -> None:
    """Within the upload's slack on ffprobe's figure, past the packaged audio's end: the job,
    which knows the exact duration, fails with the cue named, and publishes nothing."""
    with wave.open(io.BytesIO(talk[0])) as w:
        seconds = w.getnframes() / w.getframerate()
    late = json.dumps([{"start": 1, "end": 2, "text": "fine"},
                       {"start": 2, "end": round(seconds + 0.45, 3), "text": "a little long"}])
    status, body = await _upload(api, talk[0], (late.encode(), "late.json"))
    assert status == 202, body
    job = await api.finish(body["job"]["id"])
    assert job["state"] == "failed"
    assert "transcript: cue 2 (00:00:02.000 --> " in job["error"]
    assert "ends after the audio's end" in job["error"]
    await _nothing_left(api, "talk")
    assert (await api.client.get("/v1/assets/talk")).status == 404


def _multipart(parts: list[tuple[str, str, bytes, str]]) -> tuple[bytes, str]:
    boundary = "sori-transcript-test-boundary"
    body = b""
    for name, filename, data, ctype in parts:
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
                 f"filename=\"{filename}\"\r\nContent-Type: {ctype}\r\n\r\n").encode()
        body += data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.slow
def test_transcript_through_the_queue(tmp_path: Path, talk: tuple[bytes, str, str]) -> None:
    """With `[jobs] backend = "redis"` the transcript travels in the job to `sori worker`."""
    from real_clients import local_env, serve
    from redis_support import RedisServer, call, queue_env, wait_job, worker

    root = tmp_path / "media"
    body, ctype = _multipart([("transcript", "t.srt", talk[2].encode(), "application/x-subrip"),
                              ("file", "talk.wav", talk[0], "audio/wav")])
    with RedisServer(tmp_path / "redis") as redis:
        env = queue_env(local_env(root), redis, tmp_path)
        with serve(env, tmp_path / "origin.log") as origin, worker(env, tmp_path / "w.log"):
            status, got, _ = call(origin.base, "POST", "/v1/assets?id=queued", body,
                                  {"Content-Type": ctype})
            assert status == 202, got
            done = wait_job(origin.base, got["job"]["id"])
            assert done["state"] == "done", done
            status, rec, _ = call(origin.base, "GET", "/v1/assets/queued")
            assert status == 200 and "transcript" in rec
            status, vtt, headers = call(origin.base, "GET", rec["transcript"])
            assert status == 200 and b"The origin checks it before packaging." in vtt
