"""``RUN --mount`` (BuildKit's): ``type=cache`` (a directory kept under ``<root>/buildcache/mounts/``
between builds, by ``id`` or target), ``type=bind`` (a context path, read-only unless ``rw``) and
``type=tmpfs`` (an empty scratch directory); none of them ends up in the step's layer."""

from __future__ import annotations

import hashlib
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from strata.build.context import BuildContext
from strata.build.scoped import open_in_root, stat_in_root
from strata.dockerfile import DockerfileError

if TYPE_CHECKING:
    from strata.container.spec import Bind

__all__ = ["RunMount", "missing_targets", "mount_binds", "parse_mount", "remove_mount_points"]

_TRUE = ("", "true", "1")


@dataclass(frozen=True)
class RunMount:
    kind: str
    target: str
    source: str = ""
    cache_id: str = ""
    readonly: bool = False


def parse_mount(text: str) -> RunMount:
    """One ``--mount=`` value: comma-separated ``key=value`` (or bare ``ro``/``rw``) fields."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        fields[key.strip().lower()] = value.strip()
    kind = fields.get("type", "bind")
    if kind not in ("bind", "cache", "tmpfs"):
        raise DockerfileError(f"unsupported mount type {kind!r}")
    target = fields.get("target") or fields.get("dst") or fields.get("destination") or ""
    if not target:
        raise DockerfileError("mount target is required")
    if "from" in fields:
        raise DockerfileError("--mount from= is not supported by strata build")
    readonly = (fields.get("ro", fields.get("readonly", "x")) in _TRUE) or (kind == "bind" and "rw" not in fields and "readwrite" not in fields)
    source = fields.get("source") or fields.get("src") or ""
    return RunMount(kind, posixpath.normpath("/" + target), source, fields.get("id", ""), readonly)


def mount_binds(mounts: list[RunMount], ctx: BuildContext | None, cache_root: Path, scratch: Path) -> list[Bind]:
    from strata.container.spec import Bind  # a cached RUN makes no binds and need not load it

    binds: list[Bind] = []
    for i, m in enumerate(mounts):
        if m.kind == "cache":
            host = cache_root / hashlib.sha256((m.cache_id or m.target).encode()).hexdigest()[:32]
            host.mkdir(parents=True, exist_ok=True)
        elif m.kind == "tmpfs":
            host = scratch / f"tmpfs-{i}"
            host.mkdir()
        else:
            if ctx is None:
                raise DockerfileError("--mount type=bind needs a build context")
            host = ctx.root / ctx.real_path(m.source or ".")  # resolved inside the context
        binds.append(Bind(str(host), m.target, m.readonly))
    return binds


def missing_targets(root_fd: int, mounts: list[RunMount]) -> list[str]:
    """Mount targets the rootfs does not have: the runtime makes them, the step removes them."""
    return [m.target for m in mounts if stat_in_root(root_fd, m.target, follow=False) is None]


def remove_mount_points(root_fd: int, targets: list[str]) -> None:
    for target in targets:
        parent, name = posixpath.split(target)
        try:
            fd = open_in_root(root_fd, parent or "/", os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue
        try:
            try:
                os.rmdir(name, dir_fd=fd)
            except NotADirectoryError:
                os.unlink(name, dir_fd=fd)
        except OSError:
            pass
        finally:
            os.close(fd)
