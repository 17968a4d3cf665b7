"""``cp``'s path rules, as Docker's ``pkg/archive`` (copy.go) and Go's ``path/filepath`` define them: a
trailing ``/`` asserts a directory, ``/.`` means a directory's contents, and ``prepare_copy`` decides
where an archive is extracted and how its entries are renamed (file onto file, directory into an
existing directory, a new name for a new file or directory)."""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass

from strata.errors import StrataError

__all__ = [
    "CopyInfo",
    "abs_local",
    "base",
    "clean",
    "has_trailing_sep",
    "prepare_copy",
    "preserve_trailing",
    "specifies_current_dir",
    "split_dir_entry",
    "validate_output_path",
]


@dataclass
class CopyInfo:
    """Docker's ``archive.CopyInfo``: one side of a copy."""

    path: str
    exists: bool = False
    is_dir: bool = False
    rebase_name: str = ""


def clean(path: str) -> str:
    """Go's ``filepath.Clean``."""
    out = posixpath.normpath(path) if path else "."
    if out.startswith("//"):
        out = "/" + out.lstrip("/")
    return out


def base(path: str) -> str:
    """Go's ``filepath.Base``."""
    if not path:
        return "."
    stripped = path.rstrip("/")
    if not stripped:
        return "/"
    return stripped.rsplit("/", 1)[-1]


def specifies_current_dir(path: str) -> bool:
    return base(path) == "."


def has_trailing_sep(path: str) -> bool:
    return path.endswith("/")


def preserve_trailing(cleaned: str, original: str) -> str:
    """Docker's ``PreserveTrailingDotOrSeparator``."""
    if not specifies_current_dir(cleaned) and specifies_current_dir(original):
        if not has_trailing_sep(cleaned):
            cleaned += "/"
        cleaned += "."
    if not has_trailing_sep(cleaned) and has_trailing_sep(original):
        cleaned += "/"
    return cleaned


def split_dir_entry(path: str) -> tuple[str, str]:
    """Docker's ``SplitPathDirEntry``: ``/a/b/`` -> (``/a``, ``b``); ``/a/.`` -> (``/a``, ``.``)."""
    cleaned = clean(path)
    if specifies_current_dir(path):
        cleaned += "/."
    return clean(posixpath.dirname(cleaned)) if "/" in cleaned else ".", base(cleaned)


def abs_local(path: str) -> str:
    """The CLI's ``resolveLocalPath``: absolute, with a trailing ``/`` or ``/.`` kept."""
    return preserve_trailing(clean(os.path.join(os.getcwd(), path)), path)


def prepare_copy(src: CopyInfo, dst: CopyInfo) -> tuple[str, tuple[str, str] | None]:
    """Docker's ``PrepareArchiveCopy``: the directory to extract into, and the (old, new) entry name
    rebase to apply, if any."""
    dst_dir, dst_base = split_dir_entry(dst.path)
    _, src_base = split_dir_entry(src.path)
    if src.rebase_name:
        src_base = src.rebase_name
    if dst.exists and dst.is_dir:
        return dst.path, None
    if dst.exists and src.is_dir:
        raise StrataError("cannot copy directory")
    if dst.exists or src.is_dir:
        return dst_dir, (src_base, dst_base)
    if has_trailing_sep(dst.path) or specifies_current_dir(dst.path):
        raise StrataError("no such directory")
    return dst_dir, (src_base, dst_base)


def validate_output_path(path: str) -> None:
    """The Docker CLI's ``ValidateOutputPath`` (``cp``, ``save -o``, ``export -o``): the directory must
    exist; an existing ``path`` must be a directory or a regular file."""
    import stat

    parent = os.path.dirname(clean(path))
    if parent not in ("", ".") and not os.path.exists(parent):
        raise StrataError(f'invalid output path: directory "{parent}" does not exist')
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISBLK(mode) or stat.S_ISCHR(mode):  # ValidateOutputPathFileMode: a pipe or a socket is fine
        raise StrataError(f'invalid output path: "{path}" must be a directory or a regular file: got a device')
