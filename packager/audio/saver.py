"""The data-saver rung (issue 14): Opus, mono, 48 kHz, in CMAF on the AAC rungs' grid.

Encoded in one ffmpeg process beside the AAC chunks (same loudness filters), then cut
into segments at the same boundaries `timeline.segment_boundaries` gives the AAC rungs:
each segment starts at the 20 ms packet boundary nearest its cut point, so it starts
within 10 ms of the AAC segments (which start within half an AAC frame of it).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from manifests import layout
from packager import process
from packager.audio import ffmpeg_args, opus_cmaf
from packager.audio.renditions import MuxedRendition
from packager.errors import InvalidInput, PackagerError

FRAME_MS = 20  # Opus packet duration asked of the encoder
FRAME = opus_cmaf.SAMPLE_RATE * FRAME_MS // 1000  # 960 samples at 48 kHz


async def encode(src: Path, stream_index: int, filters: list[str], bitrate: int,
                 out: Path) -> None:
    """Encode the whole input into Ogg Opus at `out`."""
    code, stderr = await process.run(
        ffmpeg_args.opus_saver_args(src, stream_index, filters, bitrate, FRAME_MS, out))
    if code != 0:
        raise PackagerError(f"ffmpeg failed encoding the data-saver rung: {stderr.strip()[-300:]}")


def packet_cuts(boundaries: list[Fraction], frame: int = FRAME) -> list[int]:
    """Index of the packet that starts each segment after the first: the packet boundary
    nearest each cut point (the AAC rungs' `timeline.frame_cuts`, for Opus packets)."""
    out: list[int] = []
    for b in boundaries:
        idx = round(b * opus_cmaf.SAMPLE_RATE / frame)
        if not out or idx > out[-1]:
            out.append(idx)
    return out


def mux(ogg: Path, boundaries: list[Fraction], out: Path,
        rung_id: str = layout.DATA_SAVER_RENDITION) -> MuxedRendition:
    """Write init.mp4 and the segments of the data-saver rung into `out` (blocking)."""
    out.mkdir(parents=True, exist_ok=True)
    cuts = iter(packet_cuts(boundaries))
    cut = next(cuts, None)
    number = 1
    index = 0
    seg_start = 0
    pending: list[bytes] = []

    def flush() -> None:
        nonlocal number, seg_start
        data = opus_cmaf.opus_segment(number, seg_start * FRAME, pending, FRAME)
        (out / layout.segment_name(number)).write_bytes(data)
        number += 1
        seg_start = index
        pending.clear()

    with open(ogg, "rb") as f:
        try:
            head, packets = opus_cmaf.read_ogg_opus(f)
            for packet in packets:
                if opus_cmaf.packet_samples(packet) != FRAME:
                    raise PackagerError(f"the Opus encoder wrote a packet of "
                                        f"{opus_cmaf.packet_samples(packet)} samples, "
                                        f"not {FRAME}")
                if cut is not None and index == cut:
                    flush()
                    cut = next(cuts, None)
                pending.append(packet)
                index += 1
        except opus_cmaf.OggOpusError as e:
            raise PackagerError(f"unreadable Opus encoder output ({e})") from None
    if index == 0:
        raise InvalidInput("no audio frames came out of the encoder (silent or empty input)")
    if pending:
        flush()
    (out / layout.INIT).write_bytes(opus_cmaf.init_segment(head))
    return MuxedRendition(rung_id, out, number - 1)
