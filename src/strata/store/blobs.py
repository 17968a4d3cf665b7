"""Ingesting streams into the content-addressed blob area, hashing (and for layers, reading the tar) while streaming."""

from __future__ import annotations

import os

from strata.digest import CHUNK, Digest, HashingReader
from strata.errors import DigestMismatch, InvalidArchive
from strata.store.root import StoreRoot
from strata.values import Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    import tarfile
    from pathlib import Path

    from strata.digest import Readable

__all__ = ["LayerBlob", "ingest_blob", "ingest_layer", "scan_tar"]


class LayerBlob(Value):
    __slots__ = ("compression", "content_size", "diff_id", "digest", "size", "tar_size")
    digest: Digest  # of the blob as stored
    size: int  # blob bytes
    diff_id: Digest  # of the uncompressed tar
    content_size: int  # Docker's layer size: bytes of the files in it
    compression: str  # none | gzip | zstd | ...
    tar_size: int  # bytes of the uncompressed tar

    def __init__(
        self, digest: Digest, size: int, diff_id: Digest, content_size: int, compression: str, tar_size: int = 0
    ) -> None:
        self._init(digest=digest, size=size, diff_id=diff_id, content_size=content_size, compression=compression,
                   tar_size=tar_size)


# Device nodes are kept, as Docker keeps them (runc's device cgroup decides what a container may open;
# the runtime mounts its own /dev). The one node a layer cannot hold is a character device 0:0: in an
# overlay lower directory it would be a whiteout, hiding what the layers below hold.


def _verify_member(member: tarfile.TarInfo) -> None:
    name = member.name
    if name.startswith("/") or ".." in name.split("/"):
        raise InvalidArchive(f"refusing layer member {name!r}: path escapes the layer")
    if member.ischr() and member.devmajor == member.devminor == 0:
        raise InvalidArchive(
            f"refusing layer member {name!r}: character device 0:0 is an overlay whiteout, not a device node"
        )
    if member.islnk():
        target = member.linkname
        if target.startswith("/") or ".." in target.split("/"):
            raise InvalidArchive(f"refusing layer member {name!r}: hardlink target {target!r} escapes the layer")
    # a symlink's target is data, whatever it names (``../../x`` climbs no higher than the container's
    # root, as an absolute one): every unpack and every read of a tree goes through directory fds and never
    # follows one, so Docker's layers with such links (its chroot unpack takes them) are taken too


def scan_tar(stream: Readable) -> int:
    """Walk a tar stream to its end, checking every member; returns the bytes of file content it holds."""
    import tarfile  # here: listing commands never read a tar

    size = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|", bufsize=CHUNK) as tar:  # type: ignore[call-overload]
            for member in tar:
                _verify_member(member)
                if member.isreg():
                    size += member.size
                elif member.issym():
                    size += len(member.linkname.encode())  # as Docker's directory.Size counts links
    except tarfile.ReadError as e:
        if "empty file" in str(e):
            return 0
        raise InvalidArchive(f"invalid tar: {e}") from None
    except (tarfile.TarError, EOFError) as e:
        raise InvalidArchive(f"invalid tar: {e}") from None
    while stream.read(CHUNK):
        pass
    return size


def ingest_blob(
    root: StoreRoot, stream: Readable, expected: Digest | None = None, expected_size: int | None = None
) -> tuple[Digest, int]:
    """Copy a stream into blobs/, verifying digest and size; the blob appears only when complete."""
    reader = HashingReader(stream, expected, expected_size)
    with root.temp_file() as (f, tmp):
        while chunk := reader.read(CHUNK):
            f.write(chunk)
        f.flush()
        digest = reader.verify()
        final = root.blob_path(digest)
        if not final.exists():
            root.publish_file(tmp, final)
    return digest, reader.size


def ingest_layer(
    root: StoreRoot,
    stream: Readable,
    expected: Digest | None = None,
    expected_diff_id: Digest | None = None,
) -> LayerBlob:
    """Store a layer blob as it comes (compressed or not), learning its diff ID and content size on the way."""
    from strata.archive.compression import detect_compression, open_decompressed

    with root.temp_file() as (f, tmp):
        tee = HashingReader(stream, expected, tee=f)
        plain = open_decompressed(tee)
        tar_reader = HashingReader(plain, expected_diff_id)
        content = scan_tar(tar_reader)
        while tee.read(CHUNK):  # trailing bytes after the compressed stream
            pass
        f.flush()
        try:
            diff_id = tar_reader.verify()
        except DigestMismatch:
            raise DigestMismatch(
                f"layer content does not match its diff ID: expected {expected_diff_id}, got {tar_reader.digest}"
            ) from None
        try:
            digest = tee.verify()
        except DigestMismatch:
            raise DigestMismatch(
                f"layer blob does not match its digest: expected {expected}, got {tee.digest}"
            ) from None
        with open(tmp, "rb") as check:
            kind = detect_compression(check.read(512))
        compression = kind.value if kind is not None else "none"
        final = root.blob_path(digest)
        if not final.exists():
            root.publish_file(tmp, final)
    return LayerBlob(digest, tee.size, diff_id, content, compression, tar_reader.size)


def blob_size(path: Path) -> int:
    return os.stat(path).st_size
