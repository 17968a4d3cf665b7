"""Strict streaming iteration over a tar stream with the standard ``tarfile`` parser.

``tarfile`` in stream mode quietly treats a damaged or truncated header after the first member as the
end of the archive. ``iter_members`` does not: the archive must end with an end-of-archive (zero)
block, and every other header problem raises ``InvalidArchive``.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from contextlib import contextmanager

from strata.archive.compression import Readable
from strata.errors import InvalidArchive

TYPE_CHECKING = False  # not typing's: a cold build's COPY loads this module, typing costs ~3 ms
if TYPE_CHECKING:
    from typing import IO, Any

__all__ = ["STREAM_BUFSIZE", "iter_members", "open_tar_stream", "tar_error", "xattrs_of"]

STREAM_BUFSIZE = 64 * 1024
_XATTR_PREFIX = "SCHILY.xattr."


class _RecordingTarInfo(tarfile.TarInfo):
    """Remembers on the TarFile why reading a header failed, so the end can be checked."""

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> Any:
        try:
            return super().fromtarfile(tarfile_)
        except tarfile.HeaderError as e:
            tarfile_._strata_header_error = e  # type: ignore[attr-defined]
            raise


def tar_error(e: tarfile.TarError) -> InvalidArchive:
    """``InvalidArchive`` for an error of the ``tarfile`` parser."""
    if "unexpected end of data" in str(e):
        return InvalidArchive("unexpected EOF: tar archive is truncated")
    return InvalidArchive(f"invalid tar archive: {e}")


def _end_error(tf: tarfile.TarFile) -> InvalidArchive | None:
    err = getattr(tf, "_strata_header_error", None)
    kind = type(err).__name__  # tarfile's private HeaderError subclasses (not in typeshed)
    if err is None or kind == "EOFHeaderError":
        return None
    if kind == "EmptyHeaderError":
        return InvalidArchive("unexpected EOF: tar archive ends without an end-of-archive marker")
    if kind == "TruncatedHeaderError":
        return InvalidArchive("unexpected EOF: tar archive truncated inside a header")
    return InvalidArchive(f"archive/tar: invalid tar header ({err}) at offset {tf.offset}")


@contextmanager
def open_tar_stream(stream: Readable) -> Iterator[tarfile.TarFile]:
    """A ``tarfile`` reading ``stream`` forwards only; tar errors become ``InvalidArchive``."""
    raw: IO[bytes] = stream  # type: ignore[assignment]  # a Readable: tarfile only reads it
    try:
        tf = tarfile.open(  # noqa: SIM115 - closed in the finally below
            fileobj=raw,
            mode="r|",
            bufsize=STREAM_BUFSIZE,
            encoding="utf-8",
            errors="surrogateescape",
            tarinfo=_RecordingTarInfo,
        )
    except tarfile.TarError as e:
        raise tar_error(e) from e
    try:
        yield tf
    except tarfile.TarError as e:
        raise tar_error(e) from e
    finally:
        tf.close()


def iter_members(tf: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """Members in stream order; raises ``InvalidArchive`` unless the archive ends properly."""
    try:
        while True:
            member = tf.next()
            if member is None:
                break
            yield member
    except tarfile.TarError as e:
        raise tar_error(e) from e
    err = _end_error(tf)
    if err is not None:
        raise err


def xattrs_of(member: tarfile.TarInfo) -> dict[str, bytes]:
    """Extended attributes carried as PAX ``SCHILY.xattr.*`` records (values as raw bytes)."""
    out: dict[str, bytes] = {}
    for key, value in member.pax_headers.items():
        if key.startswith(_XATTR_PREFIX):
            out[key[len(_XATTR_PREFIX) :]] = value.encode("utf-8", "surrogateescape")
    return out
