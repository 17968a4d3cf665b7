"""The build context: a directory (used in place) or a tar stream (plain or compressed, extracted
into the store's tmp/), filtered by ``.dockerignore``; every lookup resolves inside the context."""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterator

from strata.build.ignore import IgnoreRules, pattern_regex, read_patterns
from strata.build.scoped import open_in_root, stat_in_root
from strata.build.summemo import SumMemo
from strata.build.tarsum import entry_sum, hash_sources
from strata.errors import StrataError

TYPE_CHECKING = False  # not typing's: importing typing costs a cached build's start-up
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

__all__ = ["BuildContext", "CopyError", "has_wildcards"]

_PARALLEL_FROM = 16 << 20  # bytes of files under a source: hashed by several threads


def has_wildcards(path: str) -> bool:
    return "*" in path or "?" in path or "[" in path  # filepath.Match's special characters


class CopyError(StrataError):
    """A COPY/ADD source Docker refuses; ``str()`` without the ``COPY failed: `` prefix."""


class BuildContext:
    """An open context directory: ``fd`` is its root; ``rules`` its ``.dockerignore``. Its path is kept as
    given (``root_dir``, a ``str``: a cached rebuild loads no pathlib); ``root`` is it as a ``Path``."""

    def __init__(self, root: str | os.PathLike[str], rules: IgnoreRules, scratch: Path | None = None, *,
                 is_context: bool = True) -> None:  # fmt: skip
        self.root_dir = os.fspath(root)
        self.is_context = is_context  # False: a stage's or image's rootfs (COPY --from), downloads
        self.implicit: set[str] = set()  # directories Docker's context tar would not hold
        self.bare_file_hash = False
        self.fd = os.open(self.root_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.rules = rules
        self._scratch = scratch
        self.memo: SumMemo | None = None  # a context directory's remembered content sums
        self.headers: dict[str, Any] | None = None  # a context tar's entries as its headers say (build.tarsum)

    @property
    def root(self) -> Path:
        from strata.store.root import as_path

        return as_path(self.root_dir)

    @classmethod
    def from_dir(cls, root: str, dockerfile: str | None) -> BuildContext:
        """``root``: the context directory as ``pathlib`` would write it (``strata.store.root.plain_path``)."""
        if not os.path.isdir(root):
            raise StrataError(f'unable to prepare context: path "{root}" not found')
        return cls(root, _rules(root, dockerfile))

    @classmethod
    def from_tar(cls, stream: Any, tmp: Path, dockerfile: str | None) -> BuildContext:
        """Extract a context tar (any compression) streamed from ``stream``; ``tmp`` holds it."""
        import shutil
        import tempfile
        from pathlib import Path

        from strata.archive.apply import apply_tar
        from strata.build.tarsum import header_fields

        scratch = Path(tempfile.mkdtemp(dir=tmp, prefix="build-context-"))
        headers: dict[str, Any] = {}

        def seen(member: Any) -> None:  # the daemon's tarsum: by cleaned name, the first entry of a name
            headers.setdefault(posixpath.normpath("/" + member.name).lstrip("/") or ".", header_fields(member))

        try:
            apply_tar(stream, scratch / "ctx", on_member=seen)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        ctx = cls(scratch / "ctx", _tar_rules(str(scratch / "ctx"), dockerfile), scratch)
        ctx.headers = headers
        return ctx

    def close(self) -> None:
        if self.memo is not None:
            self.memo.save()
        os.close(self.fd)
        if self._scratch is not None:
            import shutil

            shutil.rmtree(self._scratch, ignore_errors=True)

    def read_file(self, rel: str) -> bytes | None:
        try:
            fd = open_in_root(self.fd, rel, os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            return None
        with os.fdopen(fd, "rb") as f:
            return f.read()

    # --- sources --------------------------------------------------------------------------------

    def sources(self, src: str) -> list[str]:
        """The context paths a COPY/ADD source names (a glob: every match), cleaned and checked."""
        clean = posixpath.normpath(src.lstrip("/") or ".") if src not in ("", ".") else "."
        if clean == ".." or clean.startswith("../"):
            raise CopyError(f"forbidden path outside the build context: {src} ()")
        if has_wildcards(clean):
            rx = pattern_regex(clean)
            found = [(rel, lst) for rel, lst in self.walk(".") if rx.match(rel)]
            for rel, lst in found:  # a matched link is followed (inside the context): to nothing, Docker's error
                if stat.S_ISLNK(lst.st_mode) and stat_in_root(self.fd, rel) is None:
                    raise self._not_found(rel)
            return [rel for rel, _ in found]
        st = stat_in_root(self.fd, clean)
        if st is None or (clean != "." and self.rules.ignored(clean)):
            raise self._not_found(src)
        return [clean]

    def _not_found(self, src: str) -> CopyError:
        """Docker's error for a source that is not there: its path without one leading ``/`` or ``./``;
        the context's words only for the context (a stage's or image's tree: the bare ``stat``)."""
        path = src[1:] if src.startswith("/") and len(src) > 1 else src
        error = f"stat {path.removeprefix('./')}: file does not exist"
        return CopyError(f"file not found in build context or excluded by .dockerignore: {error}" if self.is_context else error)

    def walk(self, rel: str) -> Iterator[tuple[str, os.stat_result]]:
        """Every entry below directory ``rel`` not excluded, parents before children (sorted);
        symlinks are reported, never followed."""
        fd = open_in_root(self.fd, rel, os.O_RDONLY | os.O_DIRECTORY)
        try:
            yield from self._walk(fd, "" if rel == "." else rel)
        finally:
            os.close(fd)

    def _walk(self, dir_fd: int, prefix: str) -> Iterator[tuple[str, os.stat_result]]:
        for name in sorted(os.listdir(dir_fd)):
            path = f"{prefix}/{name}" if prefix else name
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            excluded = self.rules.ignored(path)
            if not excluded:
                yield path, st
            if stat.S_ISDIR(st.st_mode) and (not excluded or self.rules.may_reinclude_below(path)):
                sub = os.open(
                    name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd
                )
                try:
                    below = list(self._walk(sub, path))
                finally:
                    os.close(sub)
                if excluded and below:  # brought back by a ! pattern: the directory comes along
                    self.implicit.add(path)
                    yield path, st
                yield from below

    def send_size(self, forced: list[str], added: bytes | None, *, compress: bool = False) -> int:
        """The size of the tar Docker's CLI sends for this context (``forced``: the Dockerfile and
        ``.dockerignore``, sent even when the patterns exclude them; ``added``: a Dockerfile from
        elsewhere); ``compress``: that tar gzipped, as ``--compress`` sends it."""
        from strata.build.sendsize import tar_size

        entries = [(rel, st, self._link(rel, st)) for rel, st in self.walk(".") if rel not in self.implicit]
        listed = {rel for rel, _, _ in entries}
        for rel in forced:
            st = stat_in_root(self.fd, rel, follow=False)
            if rel not in listed and st is not None:
                entries.append((rel, st, self._link(rel, st)))
        size = tar_size(entries, None if added is None else len(added))
        if not compress:
            return size
        from strata.build.sendtar import compressed_size

        return compressed_size(entries, self.fd, size, added)

    def _link(self, rel: str, st: os.stat_result) -> str:
        return os.readlink(os.path.join(self.root_dir, rel)) if stat.S_ISLNK(st.st_mode) else ""

    def digest(self, rels: list[str]) -> str:
        """Docker's ``file:``/``dir:``/``multi:`` hash of the sources (see ``build.tarsum``)."""
        digest = hash_sources(self._source_sums(rel) for rel in rels)
        return digest.removeprefix("file:") if self.bare_file_hash else digest

    def _source_sums(self, rel: str) -> tuple[str, list[str]]:
        real = self.real_path(rel)
        parent_rel, name = posixpath.split(real)
        parent = open_in_root(self.fd, parent_rel or "/", os.O_RDONLY | os.O_DIRECTORY)
        try:
            st = os.stat(name or ".", dir_fd=parent, follow_symlinks=False)
            if not real:  # the root (the context's, or a stage's or image's): not among the sums Docker joins
                top = ""
            elif self.headers is not None:  # a context tar: its own header, or (not in it) the path
                known = self.headers.get(real)
                top = entry_sum(parent, name, real, st, header=known) if known is not None else real
            else:
                top = entry_sum(parent, name or ".", real or ".", st, from_context=self.is_context, memo=self.memo)
        finally:
            os.close(parent)
        if not stat.S_ISDIR(st.st_mode):
            return "file", [top]
        sums = [top] if top else []
        entries = list(self.walk(real or "."))
        big = self._unknown_bytes(entries) > _PARALLEL_FROM
        if big and len(entries) > 1:  # hashlib lets go of the GIL: files hash side by side
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
                sums.extend(pool.map(lambda e: self._walked_sum(*e), entries))
        else:
            last = _LastDir(self.fd)
            try:
                sums.extend(self._walked_sum(sub, sst, last) for sub, sst in entries)
            finally:
                last.close()
        return "dir", sums

    def _unknown_bytes(self, entries: list[tuple[str, os.stat_result]]) -> int:
        """Bytes of the regular files whose sums are not remembered (what hashing will read)."""
        memo = self.memo
        return sum(st.st_size for rel, st in entries
                   if stat.S_ISREG(st.st_mode) and (memo is None or not memo.has(SumMemo.key(rel, st))))  # fmt: skip

    def _walked_sum(self, rel: str, st: os.stat_result, last: _LastDir | None = None) -> str:
        """Docker hashes what a walked symlink resolves to (inside the root); a dangling one, and a
        directory its context tar does not hold, as a path. ``last``: a walk in one thread keeps its
        directory open from one entry to the next."""
        if self.is_context and rel in self.implicit:
            return rel
        if stat.S_ISLNK(st.st_mode):
            try:
                rel = self.real_path(rel)
            except FileNotFoundError:  # Docker's tar context answers the link's path, an image its target's
                return rel if self.is_context else self._dangling_target(rel)
            target = stat_in_root(self.fd, rel, follow=False)
            assert target is not None
            st = target
        if self.headers is not None:
            return self._tar_sum(rel, st)
        known = self._remembered(rel, st)
        if known is not None:  # a remembered sum needs no descriptor (a cached rebuild opens nothing)
            return known
        if last is not None:
            return entry_sum(last.fd_of(posixpath.dirname(rel) or "/"), posixpath.basename(rel) or ".", rel or ".",
                             st, from_context=self.is_context, memo=self.memo)  # fmt: skip
        parent = open_in_root(self.fd, posixpath.dirname(rel) or "/", os.O_RDONLY | os.O_DIRECTORY)
        try:
            return entry_sum(parent, posixpath.basename(rel) or ".", rel or ".", st, from_context=self.is_context,
                             memo=self.memo)  # fmt: skip
        finally:
            os.close(parent)

    def _tar_sum(self, rel: str, st: os.stat_result) -> str:
        """A context tar's entry: its header's sum (Docker's tarsum), the path when the tar has no entry."""
        assert self.headers is not None
        header = self.headers.get(rel)
        if header is None:
            return rel
        parent = open_in_root(self.fd, posixpath.dirname(rel) or "/", os.O_RDONLY | os.O_DIRECTORY)
        try:
            return entry_sum(parent, posixpath.basename(rel), rel, st, header=header)
        finally:
            os.close(parent)

    def _remembered(self, rel: str, st: os.stat_result) -> str | None:
        """The sum ``entry_sum`` would take from the memo for this file (its key: ``rel`` and ``st``)."""
        if self.memo is None or not stat.S_ISREG(st.st_mode) or st.st_size <= 0:
            return None
        return self.memo.get(SumMemo.key(rel, st))

    def _dangling_target(self, rel: str) -> str:
        """The in-root path a dangling symlink names (its parent resolved, then the link's text)."""
        parent = posixpath.dirname(rel)
        base = self.real_path(parent) if parent else ""
        fd = open_in_root(self.fd, parent or "/", os.O_RDONLY | os.O_DIRECTORY)
        try:
            text = os.readlink(posixpath.basename(rel), dir_fd=fd)
        finally:
            os.close(fd)
        joined = text if text.startswith("/") else posixpath.join("/", base, text)
        return posixpath.normpath(joined).lstrip("/")

    def real_path(self, rel: str) -> str:
        """``rel`` with every symlink resolved inside the context, relative to it (``""`` = the root)."""
        fd = open_in_root(self.fd, rel, os.O_PATH)
        try:
            real = os.readlink(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        base = os.readlink(f"/proc/self/fd/{self.fd}")
        return "" if real == base else posixpath.relpath(real, base)


class _LastDir:
    """The descriptor of the directory the last entry was in (a walk visits a directory's entries in
    a row), resolved inside the root as every lookup is."""

    def __init__(self, root_fd: int) -> None:
        self.root_fd, self.rel, self.fd = root_fd, "", -1

    def fd_of(self, rel: str) -> int:
        if self.fd < 0 or rel != self.rel:
            self.close()
            self.fd, self.rel = open_in_root(self.root_fd, rel, os.O_RDONLY | os.O_DIRECTORY), rel
        return self.fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _rules(root: str, dockerfile: str | None) -> IgnoreRules:
    """``<Dockerfile>.dockerignore`` next to the Dockerfile wins over ``.dockerignore``. The Dockerfile
    is read whatever the patterns say; excluded, it is not in the context (as Docker's daemon removes it)."""
    text = ""
    for name in ([f"{dockerfile}.dockerignore"] if dockerfile else []) + [".dockerignore"]:
        path = os.path.join(root, name)
        if os.path.isfile(path) and not os.path.islink(path):
            with open(path, errors="replace") as f:  # Path.read_text's reading
                text = f.read()
            break
    return IgnoreRules(read_patterns(text))


def _tar_rules(root: str, dockerfile: str | None) -> IgnoreRules:
    """A context tar (stdin, a URL) is what it holds: Docker's daemon applies no ``.dockerignore`` to
    it, it only removes ``.dockerignore`` and the Dockerfile when the patterns exclude them."""
    import re

    patterns = _rules(root, dockerfile)
    gone = [name for name in (".dockerignore", dockerfile) if name and patterns.ignored(name)]
    return IgnoreRules([re.sub(r"([*?\[\\])", r"\\\1", name) for name in gone])
