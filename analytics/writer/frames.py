"""What goes between an origin process and its analytics writer process (pure).

Down the writer's stdin: frames, each a 4-byte big-endian length and a pickle of
`(hits, reports)`, two lists of tuples in the field order of `analytics.events.Hit` and
`Report` (a tuple pickles several times faster than a dataclass, and the `AssetInfo`
that hundreds of hits of one asset share is pickled once per frame: pickle's memo).
Pickle is safe here only because the pipe joins a process to the child it started:
nothing else can write to it. Up its stdout: status lines, one JSON object each
(`Status`), the writer's counters, so the origin's metrics and report flushes see what
was written.
"""

from __future__ import annotations

import json
import pickle
import struct
from dataclasses import asdict, dataclass
from typing import Any, BinaryIO

HEADER = struct.Struct("!I")
MAX_FRAME = 256 * 1024 * 1024  # bytes: far past any batch; a larger length is corruption

Batch = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


class FrameError(ValueError):
    """The stream is not a sequence of frames (a bug, or a stranger on the pipe)."""


def encode(hits: list[tuple[Any, ...]], reports: list[tuple[Any, ...]]) -> bytes:
    body = pickle.dumps((hits, reports), protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(body)) + body


def read_frame(stream: BinaryIO) -> Batch | None:
    """The next frame of a blocking stream; None at its end (the origin closed it)."""
    head = _read_exactly(stream, HEADER.size)
    if head is None:
        return None
    (size,) = HEADER.unpack(head)
    if size > MAX_FRAME:
        raise FrameError(f"frame of {size} bytes")
    body = _read_exactly(stream, size)
    if body is None:
        raise FrameError("the stream ended inside a frame")
    batch = pickle.loads(body)  # noqa: S301 - our own parent process wrote it
    if (not isinstance(batch, tuple) or len(batch) != 2
            or not all(isinstance(part, list) for part in batch)):
        raise FrameError("a frame is not (hits, reports)")
    return batch[0], batch[1]


def _read_exactly(stream: BinaryIO, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            if data:
                raise FrameError("the stream ended inside a frame")
            return None
        data += chunk
    return data


@dataclass(frozen=True)
class Status:
    """The writer process's counters since it started (analytics.writer.recorder's)."""

    received: int = 0  # events read from the pipe
    accepted: int = 0  # of those, queued for writing
    full: int = 0  # of those, dropped because the queue was full
    settled: int = 0  # written, dropped or rejected: nothing more will happen to them
    written: int = 0
    dropped: int = 0  # full + dropped by the writer (database down at closing, unreadable)
    errors: int = 0
    rejected: int = 0
    queued: int = 0
    down: bool = False  # the last attempt found the database unreachable

    def line(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode() + b"\n"

    @classmethod
    def parse(cls, line: bytes) -> Status:
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError("a status line is a JSON object")
        fields = cls.__dataclass_fields__
        values: dict[str, Any] = {k: (bool(v) if k == "down" else int(v))
                                  for k, v in data.items() if k in fields}
        return cls(**values)
