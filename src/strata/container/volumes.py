"""Volumes as Docker's ``local`` driver: ``<root>/volumes/<name>/_data`` with its metadata, and the
mounts a container asks for (``-v``, ``--mount``, ``--tmpfs``, the image's ``VOLUME``,
``--volumes-from``) parsed with Docker's rules and errors, resolved into mount points.

A volume appears whole or not at all: it is made in a ``.creating-*`` directory (``_data`` and
``meta.json``) and renamed into place under ``volumes/lock``; removal renames it away first. A new
volume is filled from the image's content at its path through directory descriptors that never
follow a symlink (the image's tree is not trusted).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strata.atomicfile import write_bytes_atomic
from strata.errors import Conflict, NotFound, StrataError

__all__ = [
    "MountSpec",
    "Volume",
    "VolumeNotFound",
    "VolumeStore",
    "check_propagation",
    "fill_from_image",
    "log_mounts",
    "mount_points",
    "oci_mounts",
    "parse_mount_flag",
    "parse_tmpfs_flag",
    "parse_volume_flag",
    "parse_volumes_from",
    "rootfs_propagation",
    "validate_volume_name",
    "volume_rows",
    "volume_usage",
]

_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
_PROPAGATION = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
_MODES = {"rw", "ro", "z", "Z", "nocopy", *_PROPAGATION}
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class VolumeNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"No such volume: {name}")


def validate_volume_name(name: str) -> None:
    """The local driver's rule, in Docker's words (``create X: ...``)."""
    if len(name) == 1:
        raise StrataError(f"create {name}: volume name is too short, names should be at least two alphanumeric "
                          "characters")
    if not _NAME.fullmatch(name):
        raise StrataError(
            f'create {name}: "{name}" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path'
        )


@dataclass
class Volume:
    name: str
    created: float
    labels: dict[str, str] | None = None
    options: dict[str, str] | None = None
    anonymous: bool = False
    mountpoint: str = ""

    def doc(self) -> dict[str, Any]:
        """Docker's ``volume inspect`` document."""
        from strata.container.logs import rfc3339nano

        created = rfc3339nano(self.created)
        return {"CreatedAt": created[:19] + "Z" if created.endswith("Z") else created, "Driver": "local",
                "Labels": _sorted(self.labels), "Mountpoint": self.mountpoint, "Name": self.name,
                "Options": _sorted(self.options), "Scope": "local"}


def _sorted(mapping: dict[str, str] | None) -> dict[str, str] | None:
    """A Go map as Docker's JSON prints it: keys in order."""
    return None if mapping is None else dict(sorted(mapping.items()))


class VolumeStore:
    """The volumes of one store root."""

    def __init__(self, root: Path) -> None:
        self.base = Path(root) / "volumes"
        self.base.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._depth = 0

    @contextmanager
    def locked(self) -> Iterator[None]:
        """``volumes/lock``, exclusive (re-entrant within this store object): volumes are made, attached
        to a container's record and removed under it, so "in use" is decided atomically."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        fd = os.open(self.base / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._depth = 1
            yield
        finally:
            self._depth = 0
            os.close(fd)

    def data_dir(self, name: str) -> Path:
        return self.base / name / "_data"

    def create(self, name: str | None = None, labels: dict[str, str] | None = None,
               options: dict[str, str] | None = None, made: list[str] | None = None) -> Volume:
        """A new volume (a 64-hex name when none is given: anonymous); an existing name is returned as is."""
        anonymous = name is None
        name = name or secrets.token_hex(32)
        validate_volume_name(name)
        _check_options(name, options or {})
        vol = self._create(name, anonymous, labels, options, made)
        from strata.events import record_volume

        record_volume(self.base.parent, "create", name)  # an existing one too, as Docker's volume service
        return vol

    def _create(self, name: str, anonymous: bool, labels: dict[str, str] | None, options: dict[str, str] | None,
                made: list[str] | None) -> Volume:
        with self.locked():
            try:
                return self.get(name)
            except VolumeNotFound:
                pass
            vol = Volume(name, time.time(), None if anonymous else dict(labels or {}),
                         None if anonymous else dict(options or {}), anonymous, str(self.data_dir(name)))
            staging = self.base / f".creating-{secrets.token_hex(8)}"
            try:
                staging.mkdir(mode=0o700)
                (staging / "_data").mkdir(mode=0o755)
                meta = {"created": vol.created, "labels": vol.labels, "options": vol.options, "anonymous": anonymous}
                write_bytes_atomic(staging / "meta.json", json.dumps(meta).encode(), mode=0o600)
                os.rename(staging, self.base / name)
                if made is not None:
                    made.append(name)
            except OSError as e:
                shutil.rmtree(staging, ignore_errors=True)
                from strata.errors import os_error_text

                raise StrataError(f"create {name}: {os_error_text(e)}") from None
            return vol

    def get(self, name: str) -> Volume:
        if not _NAME.fullmatch(name):
            raise VolumeNotFound(name)
        try:
            meta = json.loads((self.base / name / "meta.json").read_text())
        except (OSError, ValueError):
            raise VolumeNotFound(name) from None
        return Volume(name, float(meta.get("created") or 0), meta.get("labels"), meta.get("options"),
                      bool(meta.get("anonymous")), str(self.data_dir(name)))

    def all(self) -> list[Volume]:
        out = []
        for entry in sorted(os.listdir(self.base)):
            if entry.startswith(".") or entry == "lock":
                continue
            try:
                out.append(self.get(entry))
            except VolumeNotFound:
                continue
        return out

    def remove(self, name: str, users: list[str] | Callable[[], list[str]]) -> None:
        """Remove a volume no container uses (``users``: the IDs of those that do, or how to ask, under the lock)."""
        with self.locked():
            self.get(name)
            if callable(users):
                users = users()
            if users:
                raise Conflict(f"remove {name}: volume is in use - [{' '.join(users)}]")
            trash = self.base / f".removing-{name}"
            os.rename(self.base / name, trash)
            shutil.rmtree(trash, ignore_errors=True)
        from strata.events import record_volume

        record_volume(self.base.parent, "destroy", name)

    def size(self, name: str) -> int:
        from strata.archive.dirs import walk_tree  # the archive package is heavy: only when asked

        total = 0
        try:
            fd = os.open(self.data_dir(name), _OPEN_DIR)
        except OSError:
            return 0
        try:
            for entry in walk_tree(fd):
                if not stat.S_ISDIR(entry.st.st_mode):
                    total += entry.st.st_blocks * 512 if entry.st.st_nlink > 1 else entry.st.st_size
        finally:
            os.close(fd)
        return total


def volume_rows(root: Path) -> list[tuple[str, int, int]]:
    """The volumes ``system df`` counts, as Docker's LocalVolumesSize: local ones made without driver
    options (a tmpfs or bind one has no size to tell); (name, containers using it, bytes)."""
    if not (Path(root) / "volumes").is_dir():
        return []
    from strata.container.records import ContainerStore

    store = VolumeStore(root)
    with ContainerStore(root) as containers:
        users = [p.get("Name") for c in containers.all() for p in c.mounts]
    return [(vol.name, users.count(vol.name), store.size(vol.name)) for vol in store.all() if not vol.options]


def volume_usage(root: Path) -> tuple[int, int, int, int]:
    """``system df``'s Local Volumes row: (volumes, in use by a container, bytes, bytes of unused ones)."""
    rows = volume_rows(root)
    return (len(rows), sum(1 for _, links, _ in rows if links), sum(n for _, _, n in rows),
            sum(n for _, links, n in rows if not links))


# the local driver's options that need another one (Docker's mandatoryOpts)
_NEEDS = (("device", "type"), ("type", "device"), ("o", "device"))


def _check_options(name: str, options: dict[str, str]) -> None:
    """Docker's local driver ``validateOpts`` and its quota check, with the volume service's
    ``create NAME:`` in front."""
    for key in options:
        if key not in ("type", "device", "o", "size"):
            raise StrataError(f"create {name}: invalid option: {json.dumps(key)}")
    for key, needed in _NEEDS:
        if key in options and needed not in options:
            raise StrataError(f"create {name}: missing required option: {json.dumps(needed)}")
    if "size" in options:  # a quota needs xfs project quotas, which strata's volumes do not set up
        raise StrataError(f"create {name}: quota size requested but no quota support")


# --- mount specifications --------------------------------------------------------------------


@dataclass
class MountSpec:
    """One mount a container asks for, before volumes are created: ``Type`` bind|volume|tmpfs."""

    type: str
    target: str
    source: str = ""  # bind: host path; volume: name ("" = anonymous)
    readonly: bool = False
    mode: str = ""  # the -v mode text as given (Docker's MountPoint.Mode)
    propagation: str = ""
    nocopy: bool = False
    tmpfs_options: list[str] = field(default_factory=list)
    volume_labels: dict[str, str] = field(default_factory=dict)  # --mount volume-label=K=V: for a new volume
    volume_options: dict[str, str] = field(default_factory=dict)  # --mount volume-opt=K=V
    from_flag: str = "-v"  # -v | --mount | --tmpfs | image | volumes-from

    def validate(self, raw: str) -> None:
        """Docker's validateMountConfig; errors prefixed with ``invalid volume specification`` for -v."""
        why = self._problem()
        if why is None:
            return
        text = f'invalid mount config for type "{self.type}": {why}' if self.from_flag != "--tmpfs" else why
        if self.from_flag == "-v":
            text = f"invalid volume specification: '{raw}': {text}"
        raise StrataError(text, exit_code=1)

    def _problem(self) -> str | None:
        if not self.target:
            return "field Target must not be empty"
        if self.target == "/":
            return "invalid specification: destination can't be '/'"
        if not self.target.startswith("/"):
            return f"invalid mount path: '{self.target}' mount path must be absolute"
        if self.type == "bind":
            if not self.source:
                return "field Source must not be empty"
            if not self.source.startswith("/"):
                return f"invalid mount path: '{self.source}' mount path must be absolute"
            if self.from_flag == "--mount" and not os.path.exists(self.source):
                return f"bind source path does not exist: {self.source}"
        elif self.type == "tmpfs":
            if self.source:
                return "field Source must be empty"
        elif self.type != "volume":
            return "mount type unknown"
        return None


def parse_volume_flag(raw: str) -> MountSpec:
    """``-v [SRC:]DST[:MODE]``: a host path (absolute) binds, a name is a named volume, none anonymous."""
    parts = raw.split(":")
    if len(parts) > 3 or not all(parts):
        raise StrataError(f"invalid volume specification: '{raw}'", exit_code=1)
    if len(parts) == 1:
        spec = MountSpec("volume", parts[0])
        spec.validate(raw)
        return spec
    src, dst = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else ""
    modes = mode.split(",") if mode else []
    if any(m not in _MODES for m in modes) or sum(m in ("ro", "rw") for m in modes) > 1 or \
            sum(m in _PROPAGATION for m in modes) > 1:
        raise StrataError(f"invalid mode: {mode}", exit_code=1)
    kind = "bind" if src.startswith("/") else "volume"
    if kind == "volume":
        validate_volume_name(src)
    if kind == "bind" and "nocopy" in modes:
        raise StrataError(f"invalid mode: {mode}", exit_code=1)
    propagation = next((m for m in modes if m in _PROPAGATION), "rprivate" if kind == "bind" else "")
    spec = MountSpec(kind, os.path.normpath(dst) if dst.startswith("/") else dst,
                     os.path.normpath(src) if kind == "bind" else src, "ro" in modes,
                     mode or ("z" if kind == "volume" else ""), propagation,
                     "nocopy" in modes)
    spec.validate(raw)
    return spec


def _mount_fields(raw: str, repeated: dict[str, dict[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in raw.split(","):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if key in ("volume-label", "volume-opt") and eq:
            k, _, v = value.partition("=")
            repeated.setdefault(key, {})[k] = v
        if key in ("readonly", "ro", "volume-nocopy") and not eq:
            value = "true"
        elif not eq:
            raise StrataError(f"invalid field '{item}' must be a key=value pair")
        out[key] = value
    return out


_MOUNT_KEYS = {"type", "source", "src", "target", "destination", "dst", "readonly", "ro", "bind-propagation",
               "volume-nocopy", "volume-driver", "volume-label", "volume-opt", "tmpfs-size", "tmpfs-mode",
               "consistency", "bind-nonrecursive"}


def parse_mount_flag(raw: str) -> MountSpec:
    """``--mount type=bind|volume|tmpfs,source=…,target=…[,readonly][,…]`` (Docker's CLI errors as the
    reason after ``invalid argument``; the daemon's validation after that)."""
    repeated: dict[str, dict[str, str]] = {}
    fields = _mount_fields(raw, repeated)
    for key in fields:
        if key not in _MOUNT_KEYS:
            raise StrataError(f"unexpected key '{key}' in '{key}={fields[key]}'", exit_code=125)
    kind = fields.get("type", "volume")
    target = fields.get("target") or fields.get("destination") or fields.get("dst") or ""
    if not target:
        raise StrataError("target is required", exit_code=125)
    ro = (fields.get("readonly") or fields.get("ro") or "false").lower() in ("1", "true")
    spec = MountSpec(kind, target, fields.get("source") or fields.get("src") or "", ro, "",
                     fields.get("bind-propagation", "rprivate" if kind == "bind" else ""),
                     fields.get("volume-nocopy", "false").lower() in ("1", "true"), from_flag="--mount")
    if kind == "tmpfs":
        spec.tmpfs_options = _tmpfs_options(fields)
    spec.volume_labels, spec.volume_options = repeated.get("volume-label", {}), repeated.get("volume-opt", {})
    if kind == "volume" and spec.source:
        validate_volume_name(spec.source)
    if spec.propagation and spec.propagation not in _PROPAGATION:
        raise StrataError(f'invalid mount config for type "{kind}": invalid propagation mode: {spec.propagation}',
                          exit_code=1)
    spec.validate(raw)
    return spec


def _tmpfs_options(fields: dict[str, str]) -> list[str]:
    """``tmpfs-size`` (go-units' RAMInBytes) and ``tmpfs-mode`` (octal) as the CLI parses them, written as
    the daemon's ConvertTmpfsOptions writes them (``mode=1777``, ``size=`` in the largest even unit)."""
    from strata.container.resources import parse_ram

    out = []
    try:
        if "tmpfs-mode" in fields:
            text = fields["tmpfs-mode"]  # strconv.ParseUint(text, 8, 32): octal digits only
            if not text or not all(ch in "01234567" for ch in text) or int(text, 8) >= 1 << 32:
                raise ValueError
            mode = int(text, 8)
            if mode:
                out.append(f"mode={mode:o}")
    except ValueError:
        raise StrataError(f"invalid value for tmpfs-mode: {fields['tmpfs-mode']}", exit_code=125) from None
    try:
        size = parse_ram(fields["tmpfs-size"]) if "tmpfs-size" in fields else 0
    except ValueError:
        raise StrataError(f"invalid value for tmpfs-size: {fields['tmpfs-size']}", exit_code=125) from None
    if size:
        divisor, suffix = next(((d, x) for d, x in ((1 << 30, "g"), (1 << 20, "m"), (1 << 10, "k")) if size % d == 0),
                               (1, ""))
        out.append(f"size={size // divisor}{suffix}")
    return out


def parse_tmpfs_flag(raw: str) -> MountSpec:
    """``--tmpfs /path[:options]``."""
    target, _, opts = raw.partition(":")
    spec = MountSpec("tmpfs", target, tmpfs_options=[o for o in opts.split(",") if o], from_flag="--tmpfs")
    spec.readonly = "ro" in spec.tmpfs_options
    spec.validate(raw)
    return spec


def parse_volumes_from(raw: str) -> tuple[str, str]:
    """``--volumes-from CONTAINER[:ro|rw]``."""
    name, _, mode = raw.partition(":")
    if mode not in ("", "ro", "rw"):
        raise StrataError(f"invalid mode: {mode}", exit_code=1)
    return name, mode


# --- mount points ----------------------------------------------------------------------------


def mount_points(store: VolumeStore, specs: list[MountSpec], image_volumes: dict[str, Any],
                 inherited: list[dict[str, Any]], made: list[str]) -> list[dict[str, Any]]:
    """The container's mount points (Docker's ``MountPoint`` shape, ``_``-keys private): later specs win
    over earlier ones at the same destination; the image's volumes fill the rest with anonymous volumes."""
    points: dict[str, dict[str, Any]] = {p["Destination"]: dict(p) for p in inherited}
    for spec in specs:
        points[spec.target] = _point(store, spec, made)
    for dest in sorted(image_volumes or {}):
        target = os.path.normpath(dest) if dest.startswith("/") else "/" + dest
        if target not in points and target != "/":
            points[target] = _point(store, MountSpec("volume", target, from_flag="image"), made)
    return sorted(points.values(), key=lambda p: (p["Destination"].rstrip("/").count("/"), p["Destination"]))


def _point(store: VolumeStore, spec: MountSpec, made: list[str]) -> dict[str, Any]:
    """One mount point, its keys in Docker's order."""
    tail: dict[str, Any] = {"Mode": spec.mode, "RW": not spec.readonly, "Propagation": spec.propagation}
    if spec.type == "bind":
        if not os.path.exists(spec.source):  # -v makes a missing source, as Docker does
            os.makedirs(spec.source, mode=0o755, exist_ok=True)
        return {"Type": "bind", "Source": spec.source, "Destination": spec.target, **tail}
    if spec.type == "tmpfs":
        return {"Type": "tmpfs", "Source": "", "Destination": spec.target, **tail,
                "_options": spec.tmpfs_options, "_flag": spec.from_flag}
    vol = store.create(spec.source or None, spec.volume_labels, spec.volume_options, made=made)
    device = {k: v for k, v in (vol.options or {}).items() if k in ("type", "device", "o")}
    return {"Type": "volume", "Name": vol.name, "Source": vol.mountpoint, "Destination": spec.target,
            "Driver": "local", **tail, "_anonymous": vol.anonymous, "_copy": not spec.nocopy,
            **({"_device": device} if device else {})}


def log_mounts(root: Path, cid: str, points: list[dict[str, Any]], action: str) -> None:
    """Docker's ``volume mount`` events as a container starts (container, destination, read/write,
    propagation) and ``volume unmount`` ones as it stops (container), one per volume it mounts."""
    from strata.events import record_volume

    for p in points:
        if p.get("Type") != "volume" or not p.get("Name"):
            continue
        extra = {"container": cid}
        if action == "mount":
            extra.update(destination=str(p.get("Destination") or ""), propagation=str(p.get("Propagation") or ""))
            extra["read/write"] = "true" if p.get("RW", True) else "false"
        record_volume(root, action, str(p["Name"]), extra)


def _mount_of(path: str, mountinfo: str) -> tuple[str, set[str]]:
    """The mount point holding ``path`` (the longest one that is a parent of it) and its optional
    fields' tags (``shared``, ``master``) as ``/proc/self/mountinfo`` lists them."""
    best, tags = "/", set()
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 7 or "-" not in fields:
            continue
        point = fields[4].replace("\\040", " ")
        inside = point == "/" or path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best = point
            tags = {f.partition(":")[0] for f in fields[6:fields.index("-")]}
    return best, tags


def check_propagation(points: list[dict[str, Any]], mountinfo: str | None = None) -> None:
    """Docker's start-time check of a bind's ``shared``/``slave`` propagation: the host mount its source
    is on must be shared (or, for slave, shared or a slave itself), else the bind would not propagate."""
    for p in points:
        prop = str(p.get("Propagation") or "")
        if p.get("Type") != "bind" or prop not in ("shared", "rshared", "slave", "rslave"):
            continue
        if mountinfo is None:
            with open("/proc/self/mountinfo") as f:
                mountinfo = f.read()
        source = str(p["Source"])
        point, tags = _mount_of(os.path.realpath(source), mountinfo)
        if prop.endswith("shared") and "shared" not in tags:
            raise StrataError(f"path {source} is mounted on {point} but it is not a shared mount", exit_code=125)
        if prop.endswith("slave") and not tags & {"shared", "master"}:
            raise StrataError(f"path {source} is mounted on {point} but it is not a shared or slave mount",
                              exit_code=125)


def rootfs_propagation(points: list[dict[str, Any]]) -> str | None:
    """The runtime's ``rootfsPropagation`` Docker sets for the binds' propagation: ``shared`` when one is
    shared (its mounts reach the host), ``rslave`` when one is a slave; None leaves the runtime's."""
    props = {str(p.get("Propagation") or "") for p in points if p.get("Type") == "bind"}
    if props & {"shared", "rshared"}:
        return "shared"
    return "rslave" if props & {"slave", "rslave"} else None


def oci_mounts(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The OCI runtime's mounts for the mount points."""
    out = []
    for p in points:
        ro = [] if p.get("RW", True) else ["ro"]
        if p["Type"] == "tmpfs":
            opts = ["nosuid", "nodev", "noexec", *[o for o in p.get("_options", []) if o not in ("ro", "rw")], *ro]
            out.append({"destination": p["Destination"], "type": "tmpfs", "source": "tmpfs", "options": opts})
            continue
        device = p.get("_device")
        if device:  # the local driver's -o type/device/o: that filesystem, mounted by the runtime
            opts = [o for o in str(device.get("o") or "").split(",") if o and not o.startswith("addr=")]
            out.append({"destination": p["Destination"], "type": device.get("type") or "none",
                        "source": device.get("device") or "none", "options": [*opts, *ro]})
            continue
        prop = p.get("Propagation") or "rprivate"
        out.append({"destination": p["Destination"], "type": "bind", "source": p["Source"],
                    "options": ["rbind", prop, *ro]})
    return out


# --- filling a new volume from the image -----------------------------------------------------


def fill_from_image(rootfs: Path, target: str, data_dir: Path) -> None:
    """Copy the image's content at ``target`` into an empty volume (Docker's copy-up; its owner and
    mode too). Nothing is followed: a symlink on the way or at ``target`` means nothing to copy."""
    from strata.archive.dirs import DirWalker
    parts = tuple(p for p in target.split("/") if p)
    root_fd = os.open(rootfs, _OPEN_DIR)
    walker = DirWalker(root_fd)
    try:
        src = walker.open(parts, create=False, member=target)
        if src is None:
            return
        dst_fd = os.open(data_dir, _OPEN_DIR)
        try:
            if os.listdir(dst_fd):
                return
            st = os.fstat(src)
            os.fchown(dst_fd, st.st_uid, st.st_gid)
            os.fchmod(dst_fd, stat.S_IMODE(st.st_mode))
            _copy_tree(src, dst_fd)
        finally:
            os.close(dst_fd)
    finally:
        walker.close()
        os.close(root_fd)


def _copy_tree(src_fd: int, dst_fd: int) -> None:
    from strata.archive.dirs import DirWalker, walk_tree
    out = DirWalker(dst_fd)
    try:
        for entry in walk_tree(src_fd):
            parent = out.open(entry.parts[:-1], create=False, member=entry.rel)
            if parent is not None:
                _copy_entry(entry.parent_fd, entry.name, entry.st, parent)
    finally:
        out.close()


def _copy_entry(src_parent: int, name: str, st: os.stat_result, dst_parent: int) -> None:
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        os.mkdir(name, mode, dir_fd=dst_parent)
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(name, dir_fd=src_parent), name, dir_fd=dst_parent)
    elif stat.S_ISREG(st.st_mode):
        _copy_file(src_parent, name, dst_parent, mode)
    elif stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        os.mknod(name, st.st_mode, st.st_rdev, dir_fd=dst_parent)
    else:
        return
    os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_parent, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(name, mode, dir_fd=dst_parent)
    os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_parent, follow_symlinks=False)


def _copy_file(src_parent: int, name: str, dst_parent: int, mode: int) -> None:
    fd_in = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=src_parent)
    try:
        if not stat.S_ISREG(os.fstat(fd_in).st_mode):  # swapped since the walk saw it
            return
        fd_out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode & 0o777,
                         dir_fd=dst_parent)
        try:
            while True:
                n = os.copy_file_range(fd_in, fd_out, 1 << 24) if hasattr(os, "copy_file_range") else 0
                if n == 0:
                    break
        except OSError:
            os.lseek(fd_in, 0, os.SEEK_SET)
            os.ftruncate(fd_out, 0)
            os.lseek(fd_out, 0, os.SEEK_SET)
            while chunk := os.read(fd_in, 1 << 20):
                os.write(fd_out, chunk)
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)
