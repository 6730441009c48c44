"""Transcripts, captions and chapters of a spoken asset (issue 14). Pure: no I/O.

    parse.py     WebVTT / SRT / JSON bytes -> Transcript (cues, chapters, language)
    sanitize.py  cue text to plain text; the checks against the audio (overlaps, past the end)
    segment.py   segmented WebVTT aligned to the media segments; the whole .vtt and .txt
    chapters.py  chapters -> Apple's HLS chapters JSON and a chapters WebVTT
    cues.py      the shared model (times in integer milliseconds, WebVTT's resolution)

A TTS pipeline knows exactly what it said and when, so the text arrives with the audio
and is published beside it: VOD by the packager (`sori package --transcript`, the upload's
`transcript` field), live by the live side using the same functions.
"""
