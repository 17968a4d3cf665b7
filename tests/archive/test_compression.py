"""compression: detection, streaming decompression of every kind, truncation/corruption, determinism."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile

import pytest

from strata.archive import Compression, compressor, detect_compression, open_decompressed
from strata.errors import InvalidArchive

KINDS = [Compression.GZIP, Compression.BZIP2, Compression.XZ, Compression.ZSTD]
CLI = {Compression.GZIP: "gzip", Compression.BZIP2: "bzip2", Compression.XZ: "xz", Compression.ZSTD: "zstd"}


@pytest.fixture(scope="module")
def tar_bytes() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for i, data in enumerate([os.urandom(200_000), b"a" * 3_000_000, b"hello\n" * 1000]):
            info = tarfile.TarInfo(f"f{i}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def compress(kind: Compression, data: bytes, level: int | None = None) -> bytes:
    out = io.BytesIO()
    with compressor(kind, out, level) as w:
        for i in range(0, len(data), 100_003):
            w.write(data[i : i + 100_003])
    return out.getvalue()


def read_all(reader: object, size: int = 65536) -> bytes:
    parts = []
    while chunk := reader.read(size):  # type: ignore[attr-defined]
        assert len(chunk) <= size
        parts.append(chunk)
    return b"".join(parts)


@pytest.mark.parametrize("kind", [*KINDS, Compression.NONE])
def test_round_trip_each_kind(kind: Compression, tar_bytes: bytes) -> None:
    blob = compress(kind, tar_bytes)
    assert detect_compression(blob[:512]) is kind
    reader = open_decompressed(io.BytesIO(blob))
    assert reader.compression is kind
    assert read_all(reader) == tar_bytes


@pytest.mark.parametrize("kind", KINDS)
def test_reads_what_the_standard_tools_write(kind: Compression, tar_bytes: bytes) -> None:
    tool = CLI[kind]
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed")
    blob = subprocess.run([tool, "-c"], input=tar_bytes, capture_output=True, check=True).stdout
    assert read_all(open_decompressed(io.BytesIO(blob)), 4096) == tar_bytes


@pytest.mark.parametrize("kind", KINDS)
def test_standard_tools_read_what_we_write(kind: Compression, tar_bytes: bytes) -> None:
    tool = CLI[kind]
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed")
    out = subprocess.run([tool, "-dc"], input=compress(kind, tar_bytes), capture_output=True, check=True)
    assert out.stdout == tar_bytes


@pytest.mark.parametrize("kind", KINDS)
def test_concatenated_streams_and_zero_padding(kind: Compression, tar_bytes: bytes) -> None:
    blob = compress(kind, tar_bytes[:10240]) + compress(kind, tar_bytes[10240:]) + bytes(1000)
    assert read_all(open_decompressed(io.BytesIO(blob)), 7000) == tar_bytes


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cut", [1, 7, 100, 5000])
def test_truncated_stream_is_refused(kind: Compression, cut: int, tar_bytes: bytes) -> None:
    blob = compress(kind, tar_bytes)
    with pytest.raises(InvalidArchive, match=rf"unexpected EOF: {kind.value} stream is truncated|invalid {kind.value} data"):
        read_all(open_decompressed(io.BytesIO(blob[:-cut])))


@pytest.mark.parametrize("kind", KINDS)
def test_corrupt_stream_is_refused(kind: Compression, tar_bytes: bytes) -> None:
    blob = bytearray(compress(kind, tar_bytes))
    for i in range(len(blob) // 3, len(blob) // 3 + 64):
        blob[i] ^= 0x5A
    with pytest.raises(InvalidArchive, match=rf"invalid {kind.value} data|unexpected EOF"):
        read_all(open_decompressed(io.BytesIO(bytes(blob))))


@pytest.mark.parametrize("kind", KINDS)
def test_trailing_garbage_is_refused(kind: Compression, tar_bytes: bytes) -> None:
    blob = compress(kind, tar_bytes[:20480]) + b"garbage after the stream" * 30
    with pytest.raises(InvalidArchive):
        read_all(open_decompressed(io.BytesIO(blob)))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x04\x22\x4d\x18" + bytes(600), "unsupported compression: lz4"),
        (b"\x1f\x9d\x90" + bytes(600), r"unsupported compression: compress \(.Z\)"),
        (b"PK\x03\x04" + bytes(600), "unsupported compression: zip"),
        (b"just some text, not an archive\n" * 40, "unsupported compression or not a tar archive"),
        (b"", "unsupported compression or not a tar archive: empty input"),
        (b"short", "unsupported compression or not a tar archive"),
    ],
)
def test_unknown_compression_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(InvalidArchive, match=message):
        open_decompressed(io.BytesIO(data))


def test_empty_tar_is_plain() -> None:
    assert open_decompressed(io.BytesIO(bytes(1024))).compression is Compression.NONE


def test_non_tar_allowed_when_not_required() -> None:
    reader = open_decompressed(io.BytesIO(b"{}"), require_tar=False)
    assert reader.compression is Compression.NONE
    assert reader.read() == b"{}"


@pytest.mark.parametrize("kind", KINDS)
def test_compression_is_deterministic(kind: Compression, tar_bytes: bytes) -> None:
    assert compress(kind, tar_bytes) == compress(kind, tar_bytes)


def test_gzip_header_has_no_mtime_or_name(tar_bytes: bytes) -> None:
    blob = compress(Compression.GZIP, tar_bytes)
    assert blob[:3] == b"\x1f\x8b\x08"
    assert blob[3] == 0  # FLG: no FNAME, FCOMMENT, FEXTRA, FHCRC
    assert blob[4:8] == bytes(4)  # MTIME 0
    assert gzip.decompress(blob) == tar_bytes


def test_bomb_is_read_in_bounded_pieces() -> None:
    data = bytes(64 * 1024 * 1024)
    blob = compress(Compression.ZSTD, data, 19)
    assert len(blob) < 100_000
    reader = open_decompressed(io.BytesIO(blob), require_tar=False)
    h = hashlib.sha256()
    total = 0
    while chunk := reader.read(1 << 20):
        assert len(chunk) <= 1 << 20
        h.update(chunk)
        total += len(chunk)
    assert total == len(data)
    assert h.hexdigest() == hashlib.sha256(data).hexdigest()
