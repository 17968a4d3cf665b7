"""COPY and ADD as build steps: sources from the context or ``--from`` a stage or image, the cache
key from their content, the copy into a container's rootfs, its changes as the step's layer."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

from strata.build import watchdog
from strata.build.context import BuildContext, CopyError
from strata.build.ignore import IgnoreRules
from strata.build.remote import download, is_url
from strata.build.scoped import open_in_root
from strata.build.state import Stage
from strata.digest import Digest
from strata.dockerfile import DockerfileError, Instruction
from strata.errors import StrataError
from strata.store.root import as_path

TYPE_CHECKING = False  # not typing's: importing typing costs a cached build's start-up
if TYPE_CHECKING:
    from pathlib import Path

    from strata.build.builder import Builder

__all__ = ["CopyStep", "lookup_id"]


def is_linked(value: str | None) -> bool:
    """``--link`` (bare or ``=true``/``=false``), with BuildKit's error for another value."""
    if value is None:
        return False
    if value.lower() in ("", "true", "false"):
        return value.lower() != "false"
    raise DockerfileError(f"expecting boolean value for flag link, not: {value}")


def lookup_id(root_fd: int, db: str, name: str) -> int | None:
    """A user's or group's numeric ID from the rootfs's ``/etc/passwd`` or ``/etc/group``."""
    if name.isdigit():
        return int(name)
    try:
        with os.fdopen(open_in_root(root_fd, db, os.O_RDONLY), "r", errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 3 and parts[0] == name and parts[2].isdigit():
                    return int(parts[2])
    except (FileNotFoundError, NotADirectoryError):
        pass
    return None


_CHOWN = "unable to convert uid/gid chown string to host mapping: "  # Docker's words around each error


def _owner(root_fd: int, chown: str) -> tuple[int, int]:
    parts = chown.split(":")
    if len(parts) > 2:
        raise StrataError(f"{_CHOWN}invalid chown string format: {chown}")
    user, group = (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    uid = lookup_id(root_fd, "/etc/passwd", user)
    if uid is None:
        raise StrataError(f"{_CHOWN}can't find uid for user {user}: no such user: {user}")
    gid = lookup_id(root_fd, "/etc/group", group)
    if gid is None:
        raise StrataError(f"{_CHOWN}can't find gid for group {group}: no such group: {group}")
    return uid, gid


def _verify(path: Path, checksum: str | None) -> None:
    """``ADD --checksum``: the download's digest (streamed) against the one given, as BuildKit says it."""
    if not checksum:
        return
    import hashlib  # a download's check: not on a cached step's path

    algo, _, want = checksum.partition(":")
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    if h.hexdigest() != want:
        raise StrataError(f"digest mismatch {algo}:{h.hexdigest()}: {checksum}")


class CopyStep:
    def __init__(
        self, b: Builder, stage: Stage, ins: Instruction, srcs: list[str], written: str, dest: str
    ) -> None:
        self.b, self.stage, self.ins = b, stage, ins
        self.srcs, self.written, self.dest = srcs, written, dest
        self.extract = ins.cmd == "add"  # local archives only: never what a URL gave
        self.linked = is_linked(ins.flag("link"))

    def run(self) -> None:
        name = self.ins.flag("from")
        image_id = self._from_image(name) if name else None
        memo = self.b.cache.sources_memo(image_id, self.srcs) if name else None
        if memo is not None:  # an image never changes: its sources' hash is known without mounting it
            rels, digest = memo
            if self._probe(rels, digest) is None:
                return
        with self._tree(image_id) as tree:
            rels = [rel for src in self.srcs for rel in tree.sources(src)]
            digest = tree.digest(rels) if rels else ""
            if name and rels:
                self.b.cache.remember_sources(image_id, self.srcs, rels, digest)
            probed = self._probe(rels, digest)
            if probed is not None:
                self._copy(tree, rels, *probed)

    def _probe(self, rels: list[str], digest: str) -> tuple[dict[str, object], str, str] | None:
        """Checks, the step's container config and its cache key (None: taken from the cache)."""
        if not rels:
            raise CopyError("no source files were specified")
        if len(rels) > 1 and not self.dest.endswith("/"):
            raise StrataError(
                f"When using {self.ins.cmd.upper()} with more than one source file, the destination must be a directory and end with a /"
            )
        chown = self.ins.flag("chown") or ""
        comment = f"{self.ins.cmd.upper()} {'--chown=' + chown if chown else ''}{digest} in {self.written} "
        cc = self.stage.copy_config()
        cc["Cmd"] = [*self.stage.shell(), "#(nop) " + comment]
        key = self.b.cached(self.stage, cc, extra=["link"] if self.linked else None)
        return None if key is None else (cc, chown, key)

    def _chmod(self) -> int | None:
        raw = self.ins.flag("chmod")
        if not raw:
            return None
        try:
            return int(raw, 8) & 0o7777
        except ValueError:
            raise StrataError(f"invalid chmod parameter: {raw}") from None

    def _copy(self, tree: BuildContext, rels: list[str], cc: dict[str, object], chown: str, key: str) -> None:
        from strata.build.copy import CopyPlan, Source, copy_sources  # a cached COPY copies nothing

        b, stage = self.b, self.stage
        if self.linked:
            plan = CopyPlan(self.dest, self._link_owner(chown), self._chmod(), extract=self.extract)
            from strata.build.copylink import copy_linked

            b.advance(stage, copy_linked(b, stage, tree, rels, plan, cc), key)
            return
        with b.runner.step_root(stage.image_id, dict(cc), list(cc["Cmd"])) as root:  # type: ignore[call-overload]
            root_fd = os.open(root.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                owner = _owner(root_fd, chown) if chown else (0, 0)
                plan = CopyPlan(self.dest, owner, self._chmod(), extract=self.extract)
                copy_sources([Source(tree.fd, rel, tree.rules) for rel in rels], plan, root_fd)
            finally:
                os.close(root_fd)
            image_id = b.runner.commit(
                root, stage.image_id, lambda empty: b.image_doc(stage, dict(cc), root.id, empty)
            )
        b.advance(stage, image_id, key)

    def _link_owner(self, chown: str) -> tuple[int, int]:
        """``--chown`` of a linked copy: numbers as they are, names looked up in the stage's image."""
        if not chown or all(part.isdigit() for part in chown.split(":")):
            return _owner(-1, chown) if chown else (0, 0)
        with self.b.runner.step_root(self.stage.image_id, {}, ["true"]) as root:
            fd = os.open(root.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                return _owner(fd, chown)
            finally:
                os.close(fd)

    @contextmanager
    def _tree(self, image_id: Digest | None) -> Iterator[BuildContext]:
        if self.ins.cmd == "add" and any(is_url(src) for src in self.srcs):
            with self._url_tree() as tree:
                yield tree
            return
        if self.ins.heredocs:
            with self._heredoc_tree() as tree:
                yield tree
            return
        if not self.ins.flag("from"):
            assert self.b.ctx is not None
            yield self.b.ctx
            return
        with self._layers_tree(image_id) as layered:
            if layered is not None:
                yield layered
                return
        with self.b.runner.container(image_id, {}, ["true"], []) as c:
            tree = BuildContext(self.b.runner.rootfs(c), IgnoreRules([]), is_context=False)
            try:
                yield tree
            finally:
                tree.close()

    @contextmanager
    def _layers_tree(self, image_id: Digest | None) -> Iterator[BuildContext | None]:
        """The stage's or image's files read from its layers (``build.layertree``), no container made;
        None where that needs a container."""
        from strata.build.layertree import layers_root

        engine = self.b.engine
        layers = engine.layer_dirs(image_id) if image_id is not None else []
        if layers:
            watchdog.ensure(engine.root)  # a kill -9 from here on: the watchdog unmounts the tree
        with layers_root(layers, engine.store.tmp) as root:
            if root is None:
                yield None
                return
            tree = BuildContext(root, IgnoreRules([]), is_context=False)
            try:
                yield tree
            finally:
                tree.close()

    @contextmanager
    def _url_tree(self) -> Iterator[BuildContext]:
        """ADD's URLs downloaded into a scratch tree (each in its own directory: names may repeat)."""
        if not all(is_url(src) for src in self.srcs):
            raise StrataError("strata build cannot mix URLs and local sources in one ADD")
        import shutil  # here and below: a cached COPY never loads them
        import tempfile

        scratch = as_path(tempfile.mkdtemp(dir=self.b.engine.store.tmp, prefix="build-url-"))
        try:
            names = []
            for i, url in enumerate(self.srcs):
                where = scratch / str(i) if len(self.srcs) > 1 else scratch
                where.mkdir(exist_ok=True)
                name = download(url, where)
                _verify(where / name, self.ins.flag("checksum"))
                names.append(f"{i}/{name}" if len(self.srcs) > 1 else name)
            self.srcs, self.extract = names, False
            tree = BuildContext(scratch, IgnoreRules([]), is_context=False)
            tree.bare_file_hash = True  # Docker's history: ADD <hex> in …, no file: for a URL
            try:
                yield tree
            finally:
                tree.close()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    @contextmanager
    def _heredoc_tree(self) -> Iterator[BuildContext]:
        """``COPY <<EOF /dest`` (BuildKit): each heredoc is a file of that name, mode 0644."""
        import shutil
        import tempfile

        scratch = as_path(tempfile.mkdtemp(dir=self.b.engine.store.tmp, prefix="build-heredoc-"))
        try:
            for doc in self.ins.heredocs:
                (scratch / doc.name).write_text(doc.content)
                (scratch / doc.name).chmod(0o644)
            self.srcs = [re.sub(r"^<<-?([\"']?)(\w+)\1$", r"\2", src) for src in self.srcs]
            tree = BuildContext(scratch, IgnoreRules([]))
            try:
                yield tree
            finally:
                tree.close()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _from_image(self, name: str) -> Digest | None:
        st = self.b.stage_named(name, by_index=True)
        if st is not None:
            return st.image_id
        if re.fullmatch(r"[+-]?[0-9]+", name):  # a number (Go's Atoi) is a stage's, never an image's
            why = "refers to current build stage" if int(name) == self.b.stage_index else "index out of bounds"
            raise StrataError(f"invalid from flag value {name}: {why}")
        try:
            return self.b.resolve_image(name)
        except StrataError as e:
            raise StrataError(f"invalid from flag value {name}: {e}") from None
