"""The offline bundle's pure parts (origin.offline.plan, origin.offline.contents): the ZIP
they lay out is read back by Python's zipfile and by Info-ZIP `unzip -t`, byte ranges of
the plan reassemble it, ZIP64 appears exactly when a size, offset or count needs it, and
the same members give the same bytes and validator."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from origin.offline import contents
from origin.offline.contents import Entry, Part
from origin.offline.plan import LIMIT32, Member, Plan, Span, dos_datetime, plan

GIB = 1 << 30
DOS = dos_datetime("2026-03-04T05:06:08Z")


def _objects() -> dict[str, bytes]:
    rng = __import__("random").Random(7)
    return {f"a/v/1/obj{i}": bytes(rng.getrandbits(8) for _ in range(n))
            for i, n in enumerate((0, 1, 777, 4096, 10_000))}


def _span_member(name: str, objects: dict[str, bytes], keys: list[str]) -> Member:
    data = b"".join(objects[k] for k in keys)
    spans = tuple(Span(k, 0, len(objects[k])) for k in keys)
    return Member(name, len(data), zlib.crc32(data), DOS, spans)


def _unzip() -> str:
    found = shutil.which("unzip")
    assert found, "Info-ZIP unzip is missing: apt-get install unzip (`make test` does)"
    return found


def _assemble(p: Plan, read: Callable[[Span, int, int], bytes], start: int = 0,
              end: int | None = None) -> bytes:
    end = p.size if end is None else end
    return b"".join(piece[lo:hi] if isinstance(piece, bytes) else read(piece, lo, hi)
                    for piece, lo, hi in p.slices(start, end))


def _reader(objects: dict[str, bytes]) -> Callable[[Span, int, int], bytes]:
    return lambda s, lo, hi: objects[s.key][s.offset + lo:s.offset + hi]


def _sample_plan() -> tuple[Plan, dict[str, bytes], dict[str, bytes]]:
    objects = _objects()
    keys = sorted(objects)
    members = [
        Member("index.json", 2, zlib.crc32(b"{}"), DOS, b"{}"),
        _span_member("a/track.m4a", objects, keys),
        _span_member("a/empty.txt", objects, [keys[0]]),
        Member("a/asset.json", 5, zlib.crc32(b"hello"), DOS, b"hello"),
        Member("b/naïve.txt", 3, zlib.crc32(b"abc"), DOS, b"abc"),
    ]
    expected = {"index.json": b"{}", "a/track.m4a": b"".join(objects[k] for k in keys),
                "a/empty.txt": b"", "a/asset.json": b"hello", "b/naïve.txt": b"abc"}
    return plan(members), objects, expected


def test_zipfile_reads_every_member_back_with_its_attributes() -> None:
    p, objects, expected = _sample_plan()
    data = _assemble(p, _reader(objects))
    assert len(data) == p.size and not p.zip64
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
        assert [i.filename for i in z.infolist()] == list(expected)
        for info in z.infolist():
            assert z.read(info) == expected[info.filename]
            assert info.compress_type == zipfile.ZIP_STORED
            assert info.date_time == (2026, 3, 4, 5, 6, 8)
            assert info.external_attr >> 16 == 0o100644
            assert info.create_system == 3


def test_unzip_tests_the_archive_clean(tmp_path: Path) -> None:
    p, objects, _ = _sample_plan()
    path = tmp_path / "b.zip"
    path.write_bytes(_assemble(p, _reader(objects)))
    out = subprocess.run([_unzip(), "-t", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "No errors detected" in out.stdout


@given(st.data())
@settings(max_examples=200, deadline=None)
def test_any_ranges_of_the_plan_concatenate_to_the_whole(data: st.DataObject) -> None:
    p, objects, _ = _sample_plan()
    whole = _assemble(p, _reader(objects))
    cuts = sorted(data.draw(st.sets(st.integers(1, p.size - 1), max_size=12)))
    bounds = [0, *cuts, p.size]
    pieces = [_assemble(p, _reader(objects), a, b) for a, b in zip(bounds, bounds[1:], strict=False)]
    assert b"".join(pieces) == whole
    a = data.draw(st.integers(0, p.size))
    b = data.draw(st.integers(a, p.size))
    assert _assemble(p, _reader(objects), a, b) == whole[a:b]


def test_slices_refuse_ranges_outside_the_plan() -> None:
    p, _, _ = _sample_plan()
    for a, b in ((-1, 3), (0, p.size + 1), (5, 4)):
        with pytest.raises(ValueError):
            list(p.slices(a, b))
    assert list(p.slices(7, 7)) == []


def test_same_members_same_bytes_and_etag_and_any_change_shows() -> None:
    p1, objects, _ = _sample_plan()
    p2, _, _ = _sample_plan()
    assert p1.etag == p2.etag and p1.etag.startswith('"') and p1.etag.endswith('"')
    assert _assemble(p1, _reader(objects)) == _assemble(p2, _reader(objects))
    base = [Member("x", 1, zlib.crc32(b"x"), DOS, b"x"),
            Member("y", 3, 5, DOS, (Span("k/v/1/a", 0, 3),))]
    variants = [
        [base[0], Member("y", 3, 6, DOS, (Span("k/v/1/a", 0, 3),))],  # another CRC
        [base[0], Member("y", 3, 5, DOS, (Span("k/v/2/a", 0, 3),))],  # another version
        [base[0], Member("y", 3, 5, DOS, (Span("k/v/1/a", 1, 3),))],  # another extent
        [base[0], Member("y", 3, 5, dos_datetime("2027-01-01T00:00:00Z"),
                         (Span("k/v/1/a", 0, 3),))],  # another time
        list(reversed(base)),  # another order
    ]
    tags = {plan(base).etag} | {plan(v).etag for v in variants}
    assert len(tags) == len(variants) + 1


def test_members_are_checked() -> None:
    with pytest.raises(ValueError, match="content has"):
        Member("a", 3, 0, DOS, b"ab")
    with pytest.raises(ValueError, match="content has"):
        Member("a", 3, 0, DOS, (Span("k", 0, 2),))
    for bad in ("", "/abs", "a/../b", "a\\b", ".."):
        with pytest.raises(ValueError, match="unsafe"):
            Member(bad, 0, 0, DOS, b"")
    with pytest.raises(ValueError, match="duplicate"):
        plan([Member("a", 0, 0, DOS, b""), Member("a", 0, 0, DOS, b"")])


def test_dos_datetime_is_the_assets_time_clamped_to_what_dos_can_say() -> None:
    assert dos_datetime("2026-03-04T05:06:08Z") == ((5 << 11) | (6 << 5) | 4,
                                                    (46 << 9) | (3 << 5) | 4)
    assert dos_datetime("2026-03-04T06:06:08+01:00") == dos_datetime("2026-03-04T05:06:08Z")
    epoch = (0, (0 << 9) | (1 << 5) | 1)
    assert dos_datetime(None) == dos_datetime("not a date") == dos_datetime("1970-01-01T00:00:00Z") \
        == epoch
    assert dos_datetime("2200-01-01T00:00:00Z") == ((23 << 11) | (59 << 5) | 29,
                                                    (127 << 9) | (12 << 5) | 31)


# --- ZIP64 ---------------------------------------------------------------------------------

class _PlanFile(io.RawIOBase):
    """A read-only, seekable file over a plan whose spans read as zeros (so a bundle of
    several GiB can be read without holding or writing it)."""

    def __init__(self, p: Plan) -> None:
        self.p, self.pos = p, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: offset, 1: self.pos + offset, 2: self.p.size + offset}[whence]
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        end = min(self.pos + len(buf), self.p.size)
        if end <= self.pos:
            return 0
        data = _assemble(self.p, lambda s, lo, hi: bytes(hi - lo), self.pos, end)
        buf[:len(data)] = data
        self.pos = end
        return len(data)


def _zeros_crc(n: int) -> int:
    crc, block = 0, bytes(16 << 20)
    while n:
        take = min(n, len(block))
        crc = zlib.crc32(block[:take] if take < len(block) else block, crc)
        n -= take
    return crc


def _big_plan() -> tuple[Plan, int]:
    big = 4 * GIB + 12345  # past the classic 32-bit size
    return plan([
        Member("a/asset.json", 2, zlib.crc32(b"{}"), DOS, b"{}"),
        Member("a/big.m4a", big, _zeros_crc(big), DOS, (Span("a/v/1/big", 0, big),)),
        Member("b/after.txt", 5, zlib.crc32(b"after"), DOS, b"after"),  # offset past 4 GiB
    ]), big


def test_a_member_past_4_gib_gets_zip64_sizes_and_offsets() -> None:
    p, big = _big_plan()
    assert p.zip64 and p.size > 4 * GIB
    with zipfile.ZipFile(io.BufferedReader(_PlanFile(p), 1 << 20)) as z:
        infos = {i.filename: i for i in z.infolist()}
        assert infos["a/big.m4a"].file_size == big
        assert infos["b/after.txt"].header_offset > LIMIT32
        assert z.read("b/after.txt") == b"after"  # found through its ZIP64 offset
        assert z.read("a/asset.json") == b"{}"
    raw = _assemble(p, lambda s, lo, hi: bytes(hi - lo), 0, 200)
    # The local header of the big member says "see ZIP64" and carries both sizes.
    at = raw.index(b"PK\x03\x04", 4)
    fields = struct.unpack("<IHHHHHIIIHH", raw[at:at + 30])
    assert fields[1] == 45 and fields[7] == fields[8] == LIMIT32
    extra = raw[at + 30 + fields[9]:at + 30 + fields[9] + fields[10]]
    assert struct.unpack("<HHQQ", extra) == (1, 16, big, big)


def test_a_small_bundle_stays_a_classic_zip() -> None:
    p, objects, _ = _sample_plan()
    data = _assemble(p, _reader(objects))
    assert b"PK\x06\x06" not in data and b"PK\x06\x07" not in data
    assert struct.unpack("<H", data[4:6])[0] == 10  # version needed 1.0 (stored)


def test_more_than_65534_members_get_a_zip64_end_record() -> None:
    members = [Member(f"m/{i:05d}", 1, zlib.crc32(b"%d" % (i % 10)), DOS, b"%d" % (i % 10))
               for i in range(0xFFFF + 3)]
    p = plan(members)
    data = _assemble(p, lambda s, lo, hi: b"")
    assert p.zip64 and b"PK\x06\x06" in data[-200:]
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = z.namelist()
        assert len(names) == len(members)
        assert z.read("m/65537") == b"7"


def test_unzip_tests_a_bundle_past_4_gib(tmp_path: Path) -> None:
    """The big plan written as a sparse file (the zero spans are holes): Info-ZIP lists it
    from its ZIP64 records (sizes, offsets and CRCs as stored), and Python's zipfile opens
    the 4 GiB member through its local header's ZIP64 extra field and reads its end.
    (`unzip -t` over the 4 GiB took half a minute of the suite; small bundles get `-t`.)"""
    p, big = _big_plan()
    path = tmp_path / "big.zip"
    with path.open("wb") as f:
        for piece, start in zip(p.pieces, p.starts, strict=True):
            if isinstance(piece, bytes):
                f.seek(start)
                f.write(piece)
        f.truncate(p.size)
    assert os.stat(path).st_blocks * 512 < 64 << 20  # sparse: nothing big was written
    out = subprocess.run([_unzip(), "-lv", str(path)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    big_line = next(line for line in out.stdout.splitlines() if line.endswith("a/big.m4a"))
    assert big_line.split()[0] == str(big), big_line  # the ZIP64 size, not 0xFFFFFFFF
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("a/big.m4a")
        assert info.file_size == big and info.header_offset < LIMIT32
        with z.open(info) as member:
            member.seek(info.file_size - 1024)
            assert member.read() == b"\0" * 1024


# --- contents ------------------------------------------------------------------------------

def _entry(asset_id: str, title: str, kind: str = "audio") -> Entry:
    rec = {"id": asset_id, "title": title, "kind": kind, "duration": 3725.2,
           "created": "2026-01-02T03:04:05Z", "version": "abc"}
    data = contents.record_bytes(rec)
    media = Span(f"{asset_id}/v/abc/download.m4a", 0, 10)
    parts = [Part("media", f"{asset_id}.m4a", 10, 1, (media,)),
             Part("record", "asset.json", len(data), zlib.crc32(data), data)]
    if kind == "video":
        parts.append(Part("poster", "poster.jpg", 4, 2, (Span(f"{asset_id}/v/abc/p.jpg", 0, 4),)))
    parts.append(Part("transcript", "transcript.vtt", 6, 3,
                      (Span(f"{asset_id}/v/abc/transcript.vtt", 0, 6),)))
    return Entry(rec, tuple(parts))


def test_contents_order_names_and_index() -> None:
    entries = [_entry("b-2", "Second"), _entry("a-1", "<script>alert(1)</script>", "video")]
    members = contents.members(entries, None, zlib.crc32)
    names = [m.name for m in members]
    assert names == ["index.json", "index.html",
                     "b-2/asset.json", "b-2/b-2.m4a", "b-2/transcript.vtt",
                     "a-1/asset.json", "a-1/a-1.m4a", "a-1/poster.jpg", "a-1/transcript.vtt"]
    index = json.loads(members[0].content)  # type: ignore[arg-type]
    assert index["format"] == contents.FORMAT and index["rendition"] is None
    assert [a["id"] for a in index["assets"]] == ["b-2", "a-1"]
    assert index["assets"][1]["files"]["poster"] == {"name": "a-1/poster.jpg", "size": 4,
                                                     "crc32": "00000002"}
    page = members[1].content
    assert isinstance(page, bytes)
    assert b"<script>alert" not in page and b"&lt;script&gt;" in page
    assert b'src="b-2/b-2.m4a"' in page and b'poster="a-1/poster.jpg"' in page
    assert b"(1:02:05)" in page
    assert members[2].dos == dos_datetime("2026-01-02T03:04:05Z")
    assert contents.members(entries, None, zlib.crc32) == members


def test_part_names() -> None:
    assert contents.part_name("media", "x", "x/v/1/download.mp4", None) == "x.mp4"
    assert contents.part_name("media", "x", "x/v/1/download.m4a", "saver") == "x.saver.m4a"
    assert contents.part_name("media", "x", "x/v/1/download.mp4", "low") == "x.low.m4a"
    assert contents.part_name("poster", "x", "x/v/1/poster.JPG", None) == "poster.jpg"
    assert contents.part_name("chapters", "x", "x/v/1/chapters.json", None) == "chapters.json"
