"""``Sending build context to Docker daemon  7.168kB``: the size of the tar Docker's CLI would send for a
context directory (computed from a walk, nothing read): per entry a 512-byte header (a PAX header
more when the name or link does not fit USTAR), a regular file's
content padded to 512 bytes (a file's further hard links: no content), then two zero blocks; the
context's root is not an entry (see ``tar_size`` for a Dockerfile the CLI adds). ``.dockerignore`` applies, but never to the Dockerfile or itself.
Stdin (``build -``) as the CLI reads it: a tar (plain or compressed; zstd too, beyond Docker 20.10) is
sent as it comes, anything else is a Dockerfile the CLI puts alone in a tar (``stdin_dockerfile``)."""

from __future__ import annotations

import os
import stat

from strata.compat.units import human_size

__all__ = ["HEAD_SIZE", "downloading_line", "header_size", "is_archive", "sending_line", "stdin_dockerfile", "tar_size"]

_BLOCK = 512
HEAD_SIZE = 2 * _BLOCK  # what the CLI peeks of stdin
_MAGIC = (b"\x1f\x8b\x08", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")  # gzip, bzip2, xz (Docker's), zstd
_NAMED = len("\n.dockerfile.") + 20 + len("\n")  # what naming the added Dockerfile adds to .dockerignore


def sending_line(size: int) -> str:
    """The line as Docker's CLI leaves it: the size as its progress shows a count without a total
    (go-units HumanSize, ``%8v``: right-aligned in eight columns), two carriage returns after it."""
    return f"Sending build context to Docker daemon {human_size(size, 4):>8}\r\r"


def downloading_line(url: str, total: int, done: int) -> str:
    """A URL context as Docker's CLI shows its download (it fetches it, then sends it): the progress
    when the last bytes came, then at the end of the body (no bar where stdin's terminal is narrow)."""
    numbers = f"{human_size(done, 4):>8}"
    bar = ""
    if total > 0:
        filled = min(int(done / total * 100) // 2, 50)
        bar = f"[{'=' * filled}>{' ' * (50 - filled)}] " if _width() > 110 else ""
        numbers = numbers if done > total else f"{numbers}/{human_size(total, 4)}"
    text = f"Downloading build context from remote url: {url} {bar}{numbers}"
    return f"{text}\r{text}\r\r" if total > 0 else f"{text}\r\r"


def _width() -> int:
    """Go's JSONProgress width: the terminal on fd 0, else 200."""
    try:
        return os.get_terminal_size(0).columns
    except OSError:
        return 200


def _pad(n: int) -> int:
    return -(-n // _BLOCK) * _BLOCK


def _fits_ustar(name: str) -> bool:
    if not name.isascii():
        return False
    if len(name) <= 100:
        return True
    # Go's splitUSTARPath: a prefix of <= 155, a name of <= 100
    return any(ch == "/" and 0 < i <= 155 and 0 < len(name) - i - 1 <= 100 for i, ch in enumerate(name))


def _pax_record(key: str, value: str) -> int:
    body = len(f" {key}={value}\n".encode("utf-8", "surrogateescape"))
    n = body + len(str(body))
    return body + len(str(n))


def header_size(name: str, link: str = "", *, size: int = 0) -> int:
    """The header blocks of one entry (its content not counted)."""
    pax = 0
    if not _fits_ustar(name):
        pax += _pax_record("path", name)
    if link and (len(link) > 100 or not link.isascii()):
        pax += _pax_record("linkpath", link)
    if size >= 8 << 30:
        pax += _pax_record("size", str(size))
    return _BLOCK + (_BLOCK + _pad(pax) if pax else 0)


def tar_size(entries: list[tuple[str, os.stat_result, str]], added: int | None) -> int:
    """``entries``: (path, lstat, link target) in walk order. ``added``: the size of a Dockerfile the
    CLI adds (from stdin or from outside the context) as ``.dockerfile.<20 hex>``, naming it in the
    ``.dockerignore`` it adds or extends. That rewrite (Docker's ReplaceFileTarWrapper) closes its
    pipe before the tar writer: the last entry is not padded and there is no end-of-archive; of the
    two added entries, in Go's random map order, the ``.dockerignore`` is taken as the last."""
    total = 0
    seen: dict[tuple[int, int], str] = {}
    ignore = ".dockerignore" in {rel for rel, _, _ in entries}
    for rel, st, link in entries:
        name = rel + "/" if stat.S_ISDIR(st.st_mode) else rel
        if stat.S_ISREG(st.st_mode):
            ident = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and ident in seen:
                total += header_size(name, seen[ident])
                continue
            seen[ident] = rel
            size = st.st_size + (_NAMED if added is not None and rel == ".dockerignore" else 0)
            total += header_size(name, size=size) + _pad(size)
        else:
            total += header_size(name, link)
    if added is None:
        return total + 2 * _BLOCK
    if ignore:
        return total + _BLOCK + added
    return total + _BLOCK + _pad(added) + _BLOCK + len(".dockerignore") + _NAMED


def is_archive(head: bytes) -> bool:
    """The CLI's IsArchive on stdin's first bytes: a compression's magic, or a tar header that reads
    (not an end-of-archive block)."""
    if head.startswith(_MAGIC):
        return True
    import tarfile

    try:
        tarfile.TarInfo.frombuf(head[:_BLOCK], "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def stdin_dockerfile(data: bytes) -> tuple[bytes, int]:
    """A Dockerfile read from stdin as the context the CLI makes of it: a tar holding it as
    ``Dockerfile`` (``build.sendtar``), and its size (its header, content, end blocks)."""
    from strata.build.sendtar import dockerfile_tar

    tar = dockerfile_tar(data)
    return tar, len(tar)
