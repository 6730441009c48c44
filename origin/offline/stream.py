"""Any byte range of a planned bundle, read from the store as it is sent.

Memory stays constant whatever the bundle's size: literal pieces are a few hundred
bytes of headers (and the small index and record files), and store spans are read in
the store's chunks, one at a time, as the consumer takes them.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from origin.offline.plan import Plan
from storage.base import CHUNK_SIZE, Store


class ShortRead(Exception):
    """A store object gave fewer bytes than planned (removed or cut underneath us):
    the response, whose length is already on the wire, cannot be completed."""


async def read_range(store: Store, plan: Plan, start: int, end: int,
                     chunk_size: int = CHUNK_SIZE) -> AsyncGenerator[bytes, None]:
    """Bytes [start, end) of the bundle, in order, in chunks of at most `chunk_size`."""
    for piece, lo, hi in plan.slices(start, end):
        if isinstance(piece, bytes):
            for at in range(lo, hi, chunk_size):
                yield piece[at:min(at + chunk_size, hi)]
            continue
        got = 0
        chunks = store.read(piece.key, piece.offset + lo, piece.offset + hi, chunk_size)
        try:
            async for chunk in chunks:
                got += len(chunk)
                yield chunk
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        if got != hi - lo:
            raise ShortRead(f"{piece.key!r}: {got} of {hi - lo} bytes")
