"""Adding a transcript to a packaged version: the one module of this folder that writes
files (into the job's work directory; publish uploads them with the media).

It runs after the media are encoded and read back, because the subtitles rendition is
aligned to the real segments (their measured tfdt and durations) and the cues are checked
against the real duration of the packaged audio, not the source's estimate.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from manifests import layout
from manifests.model import Presentation, Rendition, TextTrack
from packager import record
from packager.publish import Bundle
from packager.transcript import chapters, sanitize, segment
from packager.transcript.cues import Transcript


def timing_rendition(p: Presentation) -> Rendition:
    """The rendition the subtitles align to: the main (AAC) audio rendition, whose segment
    count the subtitles playlist matches; the first video one for a video without audio."""
    audio = [r for r in p.audio if r.id != layout.DATA_SAVER_RENDITION] or list(p.audio)
    return (audio or list(p.video))[0]


def attach(t: Transcript, p: Presentation, version: str, work: Path, bundle: Bundle,
           ) -> tuple[Presentation, dict[str, str]]:
    """Check `t` against the packaged media, write its files into `work` and `bundle`, and
    return the presentation with its text track (and chapters) and the record's URLs.

    Raises TranscriptError (InvalidInput) when a cue lies past the audio's end.
    Blocking: run it in a thread.
    """
    r = timing_rendition(p)
    first = r.segments[0].start
    duration_ms = math.floor(r.duration * 1000)
    t = sanitize.fit(t, duration_ms)
    vdir = layout.version_dir(version)
    subs_rel = f"{vdir}/{layout.SUBTITLES_DIR}"
    out = work / "transcript"
    (out / layout.SUBTITLES_DIR).mkdir(parents=True, exist_ok=True)

    wins = segment.windows(((s.number, s.start, s.duration) for s in r.segments), r.timescale,
                           first)
    for number, text in segment.segments(t, wins, segment.mpegts(first, r.timescale)):
        name = layout.subtitle_segment_name(number)
        path = out / layout.SUBTITLES_DIR / name
        path.write_text(text, encoding="utf-8")
        bundle.files.append((f"{subs_rel}/{name}", path))

    whole = segment.whole_vtt(t).encode()
    texts = {layout.TRANSCRIPT_VTT: whole, layout.TRANSCRIPT_TXT: segment.plain_text(t).encode()}
    found = chapters.collect(t)
    if found:
        texts[layout.CHAPTERS_JSON] = chapters.apple_json(found, duration_ms, t.language).encode()
        texts[layout.CHAPTERS_VTT] = chapters.chapters_vtt(found, duration_ms).encode()
    for name, data in texts.items():
        (out / name).write_bytes(data)
        bundle.files.append((f"{vdir}/{name}", out / name))

    track = TextTrack(dir=subs_rel, segment_durations=tuple(b.end - b.start for b in wins),
                      whole_uri=f"{vdir}/{layout.TRANSCRIPT_VTT}",
                      bandwidth=max(1, math.ceil(8 * len(whole) / max(r.duration, 1e-3))),
                      language=t.language, first_number=r.segments[0].number)
    p = dataclasses.replace(p, text=track,
                            chapters_uri=f"{vdir}/{layout.CHAPTERS_JSON}" if found else "")
    bundle.add_manifests(p)  # again, now with the subtitles rendition and chapters
    urls = {"transcript": record.media_url(p.asset_id, f"{vdir}/{layout.TRANSCRIPT_VTT}"),
            "transcript_text": record.media_url(p.asset_id, f"{vdir}/{layout.TRANSCRIPT_TXT}")}
    if found:
        urls["chapters"] = record.media_url(p.asset_id, f"{vdir}/{layout.CHAPTERS_JSON}")
    return p, urls
