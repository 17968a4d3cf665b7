"""``RUN --mount`` (BuildKit's): ``type=cache`` (a directory kept under ``<root>/buildcache/mounts/``
between builds, by ``id`` or target, held as its ``sharing`` says; ``from=`` seeds a new one from a stage or image), ``type=bind`` (a
path of the context or, with ``from=``, of a stage or image; read-only unless ``rw``, writes
discarded), ``type=tmpfs`` (a fresh tmpfs, ``size=`` its limit), ``type=secret`` (a ``--secret`` file, at
``/run/secrets/<id>`` by default) and ``type=ssh`` (the ``--ssh`` agent of its id, build.sshforward).
None of them ends up in the step's layer; of the mount points the runtime had to make, the
directories stay (empty) and the files go, as with Docker 20.10's BuildKit."""

from __future__ import annotations

import csv
import errno
import hashlib
import itertools
import os
import posixpath
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from strata.build.scoped import open_in_root, stat_in_root
from strata.dockerfile import DockerfileError, Instruction
from strata.errors import StrataError

if TYPE_CHECKING:
    from strata.build.builder import Builder
    from strata.build.context import BuildContext
    from strata.container.spec import Bind
    from strata.container.volumes import MountSpec
    from strata.digest import Digest

__all__ = [
    "RunMount", "made_mount_points", "mount_binds", "mount_froms", "mount_keys", "mount_targets", "parse_mount",
    "parse_secrets", "remove_mount_points", "step_mount",
]  # fmt: skip

_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
_TMPFS = "tmpfs:"  # a bind source that is a tmpfs of these options (a host path is absolute)
_BOOLS = {"1": True, "t": True, "T": True, "true": True, "TRUE": True, "True": True,
          "0": False, "f": False, "F": False, "false": False, "FALSE": False, "False": False}  # fmt: skip


@dataclass(frozen=True)
class RunMount:
    kind: str
    target: str  # as written (relative: below the WORKDIR); "" for a secret/ssh default
    source: str = ""
    cache_id: str = ""
    readonly: bool = False
    from_: str = ""
    required: bool = False
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    sharing: str = "shared"  # a cache's: shared, private or locked
    size: int = 0  # a tmpfs's size limit in bytes (0: none)


def _bool(key: str, value: str) -> bool:
    if value not in _BOOLS:
        raise DockerfileError(f"invalid value for {key}: {value}")
    return _BOOLS[value]


def _number(key: str, value: str, base: int) -> int:
    try:
        n = int(value, base)
    except ValueError:
        n = -1
    if not 0 <= n < 1 << 32 or value.startswith(("+", "-")):
        raise DockerfileError(f"invalid value {value} for {key}")
    return n


def _fields(text: str) -> list[str]:
    """The comma-separated fields (Go's csv reader: a field may be double-quoted)."""
    try:
        return next(csv.reader([text]), [])
    except csv.Error as e:
        raise DockerfileError(f"failed to parse csv mounts: {e}") from None


def parse_mount(text: str) -> RunMount:
    """One ``--mount=`` value, checked with BuildKit's words (Docker 20.10's Dockerfile frontend)."""
    f: dict[str, object] = {"kind": "bind", "target": ""}
    ro_auto = True
    for field in _fields(text):
        key, sep, value = field.partition("=")
        key = key.lower()
        if not sep and key in ("readonly", "ro", "readwrite", "rw"):
            f["readonly"], ro_auto = key in ("readonly", "ro"), False
        elif not sep and key == "required" and f["kind"] in ("secret", "ssh"):
            f["required"] = True
        elif not sep and key == "required":
            raise DockerfileError(f"unexpected key '{key}' for mount type '{f['kind']}'")
        elif not sep:
            raise DockerfileError(f"invalid field '{field}' must be a key=value pair")
        else:
            ro_auto = _field(f, key, value, field) and ro_auto
    kind = str(f["kind"])
    if kind not in ("secret", "ssh", "cache"):
        for key in ("mode", "uid", "gid"):
            if key in f:
                raise DockerfileError(f'{key} not allowed for "{kind}" type mounts')
    if ro_auto:
        f["readonly"] = kind not in ("cache", "tmpfs")
    if f.get("sharing") and kind != "cache":
        raise DockerfileError(f"invalid cache sharing set for {kind} mount")
    f["sharing"] = f.get("sharing") or "shared"
    mount = RunMount(**f)  # type: ignore[arg-type]
    _check(mount)
    return mount


def _field(f: dict[str, object], key: str, value: str, field: str) -> bool:
    """One ``key=value`` into ``f``; False when it sets read-only or read-write."""
    names = {"from": "from_", "source": "source", "src": "source", "target": "target", "dst": "target",
             "destination": "target", "id": "cache_id"}  # fmt: skip
    if key == "type":
        if value.lower() not in _TYPES:
            raise DockerfileError(f'unsupported mount type "{value}"')
        f["kind"] = value.lower()
    elif key in names:
        f[names[key]] = value
    elif key in ("readonly", "ro", "readwrite", "rw"):
        f["readonly"] = _bool(key, value) == (key in ("readonly", "ro"))
        return False
    elif key == "required":
        if f["kind"] not in ("secret", "ssh"):
            raise DockerfileError(f"unexpected key '{key}' for mount type '{f['kind']}'")
        f["required"] = _bool(key, value)
    elif key == "sharing":
        if value and value.lower() not in ("shared", "private", "locked"):
            raise DockerfileError(f'unsupported sharing value "{value}"')
        f["sharing"] = value.lower()
    elif key in ("mode", "uid", "gid"):
        f[key] = _number(key, value, 8 if key == "mode" else 10)
    elif key == "size" and f["kind"] == "tmpfs":
        f["size"] = _ram_in_bytes(value)
    elif key == "size":
        raise DockerfileError(f"unexpected key '{key}' for mount type '{f['kind']}'")
    else:
        raise DockerfileError(f"unexpected key '{key}' in '{field}'")
    return True


def _ram_in_bytes(text: str) -> int:
    """A size as go-units' ``RAMInBytes`` reads it (``64m``, ``1.5GiB``, ``1024``: binary units)."""
    import re

    found = re.fullmatch(r"(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?", text)
    if found is None or found[1].count(".") > 1:
        raise DockerfileError(f"invalid size: '{text}'")
    power = " kmgtp".index((found[2] or " ").lower())
    return int(float(found[1]) * 1024**power)


def _check(m: RunMount) -> None:
    if m.kind == "secret":
        if m.from_:
            raise DockerfileError("secret mount should not have a from")
        if not (m.source or m.target or m.cache_id):
            raise DockerfileError("invalid secret mount. one of source, target required")
        if m.source and m.cache_id:
            raise DockerfileError("both source and id can't be set")
    elif m.kind == "ssh":
        if m.source:
            raise DockerfileError("ssh does not support source")
    elif not m.target:
        raise DockerfileError("mount target is required")


def mount_froms(ins: Instruction) -> list[str]:
    """The stages or images a RUN's mounts name in ``from=`` (what the step needs built first)."""
    out = []
    for name, value in ins.flags:
        if name == "mount":
            try:
                m = parse_mount(value or "")
            except DockerfileError:
                continue  # the step itself reports it
            if m.from_:
                out.append(m.from_)
    return out


def parse_secrets(values: list[str]) -> dict[str, str]:
    """``--secret id=NAME[,src=PATH]`` flags (Docker 20.10's CLI): id -> the file; its errors."""
    out: dict[str, str] = {}
    for text in values:
        try:
            sid, path = _secret_flag(text)
        except StrataError as e:
            raise StrataError(f"could not parse secrets: [{' '.join(values)}]: {e}") from None
        out[sid] = path
    return out


def _secret_flag(text: str) -> tuple[str, str]:
    fields: dict[str, str] = {}
    for field in next(csv.reader([text]), []):
        key, sep, value = field.partition("=")
        key = key.lower()
        if not sep:
            raise StrataError(f"invalid field '{field}' must be a key=value pair")
        if key not in ("type", "id", "source", "src"):
            raise StrataError(f"unexpected key '{key}' in '{field}'")
        fields["source" if key == "src" else key] = value
    sid = fields.get("id", "")
    if not sid:
        raise StrataError("secret missing ID")
    path = fields.get("source") or sid
    if not os.path.exists(path):
        raise StrataError(f"failed to stat {path}: stat {path}: no such file or directory")
    return sid, os.path.abspath(path)


# --- the binds of one RUN ---------------------------------------------------------------------


def mount_keys(b: Builder, mounts: list[RunMount]) -> list[str]:
    """What a RUN's mounts add to its cache key, as BuildKit's: the image a ``from=`` names and the
    content (Docker's content hash) of the context a bind shows. A cache's content never counts."""
    keys = []
    for m in mounts:
        if m.from_ and m.kind in ("bind", "cache"):
            keys.append(f"{m.kind}:{m.target}<-{_from_image(b, m.from_) or 'scratch'}")
        elif m.kind == "bind":
            ctx = _context(b)
            keys.append(f"bind:{m.target}<-{ctx.digest([_context_rel(b, m) or '.'])}")
    return keys


def mount_targets(mounts: list[RunMount], workdir: str) -> list[str]:
    """Where each mount is in the step's container (a secret's and an ssh socket's defaults BuildKit's:
    ``/run/secrets/<id>``, ``/run/buildkit/ssh_agent.<N>`` for the Nth ssh mount of the RUN)."""
    out, n_ssh = [], 0
    for m in mounts:
        if m.kind == "secret" and not m.target:
            out.append("/run/secrets/" + posixpath.basename(m.source or m.cache_id))
        elif m.kind == "ssh" and not m.target:
            out.append(f"/run/buildkit/ssh_agent.{n_ssh}")
        else:
            out.append(posixpath.normpath(posixpath.join("/", workdir or "/", m.target)))
        n_ssh += m.kind == "ssh"
    return out


@contextmanager
def mount_binds(b: Builder, workdir: str, mounts: list[RunMount], scratch: Path) -> Iterator[list[Bind]]:
    """The binds of a RUN's mounts; a ``from=`` stage or image stays mounted until the step ends."""
    from strata.container.spec import Bind  # a cached RUN makes no binds and need not load it

    with ExitStack() as stack:
        binds: list[Bind] = []
        held: dict[str, Path] = {}  # the caches this step holds, by key: one hold each (BuildKit's)
        for i, (m, target) in enumerate(zip(mounts, mount_targets(mounts, workdir), strict=True)):
            source = _source(b, stack, m, scratch / f"mount-{i}", held)
            if source is not None:
                binds.append(Bind(str(source), target, m.readonly))
        yield binds


def _source(b: Builder, stack: ExitStack, m: RunMount, scratch: Path, held: dict[str, Path]) -> Path | None:
    """The host path a mount binds (None: an optional secret or ssh agent nobody gave)."""
    if m.kind == "tmpfs":
        return _tmpfs(m)
    if m.kind == "secret":
        return _secret(b, m, scratch)
    if m.kind == "ssh":
        return _ssh(b, stack, m, scratch)
    image_id, root = _from_root(b, stack, m.from_) if m.from_ else (None, None)
    if m.kind == "cache":
        return _cache(b, stack, m, (root, image_id), held)
    if root is None:
        return _context_source(b, m, scratch)
    return _inside(root, m.source or "/")


def _context_source(b: Builder, m: RunMount, scratch: Path) -> Path:
    """A path of the context as the build sees it: what ``.dockerignore`` leaves out is not there (a
    filtered copy then), and a ``rw`` mount writes into a copy, never into the user's directory."""
    from strata.build.copy import CopyPlan, Source, copy_sources

    ctx = _context(b)
    rel = _context_rel(b, m)
    found = _inside(ctx.root, m.source or "/")
    if not found.is_dir() or not ctx.rules.patterns:
        if m.readonly:
            return found
        _clone(found, scratch)
        return scratch
    scratch.mkdir()
    fd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        copy_sources([Source(ctx.fd, rel or ".", ctx.rules)], CopyPlan("/"), fd)
    finally:
        os.close(fd)
    return scratch


def _context(b: Builder) -> BuildContext:
    if b.ctx is None:
        raise DockerfileError("--mount type=bind needs a build context")
    return b.ctx


def _context_rel(b: Builder, m: RunMount) -> str:
    """The context path a bind shows (symlinks resolved inside it); BuildKit's error when it is
    missing or left out by ``.dockerignore``."""
    ctx = _context(b)
    _inside(ctx.root, m.source or "/")
    rel = ctx.real_path(m.source or "/")
    if rel and ctx.rules.ignored(rel):
        raise StrataError(f'"{posixpath.normpath(posixpath.join("/", m.source))}" not found: not found')
    return rel


def _from_image(b: Builder, name: str) -> Digest | None:
    """The image of the earlier stage named ``name``, else of the image ``name`` (pulled if missing)."""
    st = b.stage_named(name, by_index=False)
    return st.image_id if st is not None else b.resolve_image(name)


def _from_root(b: Builder, stack: ExitStack, name: str) -> tuple[Digest | None, Path]:
    """The image of the stage (by its name) or image ``from=`` names and its root filesystem,
    mounted until the step ends (a ``rw`` bind writes into that throwaway container)."""
    image_id = _from_image(b, name)
    c = stack.enter_context(b.runner.container(image_id, {}, ["true"], []))
    return image_id, Path(b.runner.rootfs(c))


def _inside(root: Path, rel: str) -> Path:
    """``rel`` resolved inside ``root`` (symlinks too); BuildKit's error when it is missing."""
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise StrataError(f"{root}: {e.strerror}") from None
    try:
        fd = open_in_root(root_fd, rel, os.O_PATH)
    except (FileNotFoundError, NotADirectoryError):
        raise StrataError(f'"{posixpath.normpath(posixpath.join("/", rel))}" not found: not found') from None
    finally:
        os.close(root_fd)
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    finally:
        os.close(fd)


def _tmpfs(m: RunMount) -> Path:
    """A fresh tmpfs for the step (mode 1777, executable as BuildKit's; ``size=`` its limit: writing past
    it is ENOSPC): mounted by the runtime in the step's own mount namespace, so it goes with the step
    whatever happens to the build (``step_mount`` reads this source)."""
    return Path(_TMPFS + ",".join(["exec", "mode=1777", *([f"size={m.size}"] if m.size else [])]))


def step_mount(bind: Bind) -> MountSpec:
    """The runtime's mount for one of a step's binds: a tmpfs for ``_tmpfs``'s, else a bind mount."""
    from strata.container.volumes import MountSpec

    if bind.source.startswith(_TMPFS):
        return MountSpec("tmpfs", bind.destination, tmpfs_options=bind.source[len(_TMPFS) :].split(","),
                         from_flag="--tmpfs")  # fmt: skip
    return MountSpec("bind", bind.destination, bind.source, bind.readonly, from_flag="-v")


def _cache(b: Builder, stack: ExitStack, m: RunMount, seed: tuple[Path | None, Digest | None],
           held: dict[str, Path]) -> Path:  # fmt: skip
    """The cache directory, held for the step as its ``sharing`` says (BuildKit's): ``shared`` with
    other shared users, ``locked`` alone (waiting for the others), ``private`` alone or, when it is in
    use, another instance of it (made fresh, kept too). Kept between builds; a new one is seeded from
    ``from=`` (its ``source``) or made with the mount's ``uid``/``gid``/``mode`` (root's, 0755). Two
    mounts of one cache in one RUN are the same directory, held once, whatever their ``sharing`` (as
    BuildKit's exec op: the first one's instance; a second ``locked`` hold would wait for itself)."""
    root, image_id = seed
    key = m.cache_id or m.target
    if m.from_:
        key += f"\0{image_id or 'scratch'}\0{posixpath.normpath('/' + m.source)}"
    if key in held:
        return held[key]
    name = hashlib.sha256(key.encode()).hexdigest()[:32]
    for n in itertools.count():
        host = Path(b.engine.root) / "buildcache" / "mounts" / (f"{name}-{n}" if n else name)
        _new_cache(b, m, root, host)
        if _hold(b, stack, host, m.sharing):
            held[key] = host
            return host
    raise AssertionError("unreachable")


def _hold(b: Builder, stack: ExitStack, host: Path, sharing: str) -> bool:
    """A lock on the cache for the step (``flock``: released when the step's ExitStack closes its fd);
    False when another step holds it and ``sharing`` is not ``locked`` (which waits)."""
    import fcntl
    import time

    fd = os.open(host, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    mode = fcntl.LOCK_SH if sharing == "shared" else fcntl.LOCK_EX
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            stack.callback(os.close, fd)
            return True
        except BlockingIOError:
            if sharing != "locked" or b.cancelled.is_set():
                os.close(fd)
                if b.cancelled.is_set():
                    raise StrataError("build cancelled") from None
                return False
        time.sleep(0.1)


def _new_cache(b: Builder, m: RunMount, root: Path | None, host: Path) -> None:
    """The cache at ``host`` made when it is not there yet (staged aside, renamed into place)."""
    if os.path.lexists(host):
        return
    host.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=b.engine.store.tmp, prefix="build-cache-"))
    new = staging / "cache"
    try:
        if root is not None:
            _clone(_inside(root, m.source or "/"), new)
        else:
            new.mkdir()
            os.chown(new, m.uid or 0, m.gid or 0)
            os.chmod(new, 0o755 if m.mode is None else m.mode & 0o7777)
        if not os.path.lexists(host):
            new.rename(host)
    except FileExistsError:
        pass  # another build (or stage) made it meanwhile: theirs is used
    except OSError as e:
        if e.errno != errno.ENOTEMPTY:
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _clone(src: Path, dest: Path) -> None:
    """A copy of ``src`` (a directory or a file) keeping modes, owners and links."""
    if not src.is_dir():
        shutil.copy2(src, dest, follow_symlinks=False)
        os.lchown(dest, (st := os.lstat(src)).st_uid, st.st_gid)
        return
    shutil.copytree(src, dest, symlinks=True)
    for dirpath, dirnames, filenames in os.walk(src):
        for name in [".", *dirnames, *filenames]:
            st = os.lstat(os.path.join(dirpath, name))
            os.lchown(os.path.join(dest, os.path.relpath(dirpath, src), name), st.st_uid, st.st_gid)


def _ssh(b: Builder, stack: ExitStack, m: RunMount, scratch: Path) -> Path | None:
    """The step's socket to the ``--ssh`` agent of the mount's id (None: not given, not required)."""
    from strata.build.sshforward import DEFAULT_ID, ssh_socket

    paths = b.opts.ssh.get(m.cache_id or DEFAULT_ID)
    if paths is None:
        if not m.required:
            return None
        if not b.opts.ssh:
            raise StrataError(f'no SSH key "{m.cache_id}" forwarded from the client')
        raise StrataError(f"unset ssh forward key {m.cache_id or DEFAULT_ID}")
    mode = 0o600 if m.mode is None else m.mode & 0o7777
    return stack.enter_context(ssh_socket(paths, scratch, m.uid or 0, m.gid or 0, mode))


def _secret(b: Builder, m: RunMount, scratch: Path) -> Path | None:
    """The ``--secret`` of the mount's id in a file of its own (mode 0400 unless told, root's)."""
    sid = m.source or m.cache_id or posixpath.basename(m.target)
    path = b.opts.secrets.get(sid)
    if path is None:
        if m.required:
            raise StrataError(f"secret {sid} not found: not found")
        return None
    scratch.mkdir(mode=0o700)
    dest = scratch / "secret"
    with open(path, "rb") as src, open(dest, "xb") as out:
        shutil.copyfileobj(src, out)
    os.chown(dest, m.uid or 0, m.gid or 0)
    os.chmod(dest, 0o400 if m.mode is None else m.mode & 0o7777)
    return dest


# --- mount points -----------------------------------------------------------------------------


def made_mount_points(root_fd: int, targets: list[str]) -> list[str]:
    """The mount targets the runtime will make (those not in the tree yet): after the step, the ones
    that are still an empty file are removed (``remove_mount_points``), as Docker 20.10's BuildKit
    removes its mount stubs; a directory made for a mount, and every parent made for one, stays in
    the layer as BuildKit leaves it (an empty directory, 0755, root's)."""
    return sorted({t for t in targets if t not in ("/", "") and stat_in_root(root_fd, t, follow=False) is None})


def remove_mount_points(root_fd: int, paths: list[str]) -> None:
    """Each path removed if it is still an empty file (what the runtime made for a file, socket or
    device mount; BuildKit's stub cleaner: a directory is never removed, nor a file with content)."""
    for path in paths:
        parent, name = posixpath.split(path)
        try:
            fd = open_in_root(root_fd, parent or "/", os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode) and st.st_size == 0:
                os.unlink(name, dir_fd=fd)
        except OSError:
            pass
        finally:
            os.close(fd)
