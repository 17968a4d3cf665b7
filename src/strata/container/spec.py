"""The OCI runtime bundle's ``config.json``, built the way Docker builds its default spec.

Also merges the image config with ``run`` options into Docker's container ``Config`` object
(entrypoint/cmd/env/workdir/user rules), and resolves users against the container's own
``/etc/passwd`` and ``/etc/group`` without following symlinks out of the rootfs.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from strata.archive.dirs import read_in_root
from strata.container.seccomp import oci_seccomp
from strata.errors import StrataError

TYPE_CHECKING = False  # not typing's: a build step's container loads no typing
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "DEFAULT_CAPS",
    "DEFAULT_PATH",
    "MASKED_PATHS",
    "READONLY_PATHS",
    "Bind",
    "RuntimeUser",
    "build_spec",
    "container_config",
    "merge_env",
    "process_env",
    "read_kv_file",
    "resolve_user",
]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Docker's default capability set (moby oci/caps/defaults.go).
DEFAULT_CAPS = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
]

MASKED_PATHS = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
]

READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

_DEVICE_RULES: list[dict[str, Any]] = [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
]


def _default_mounts() -> list[dict[str, Any]]:
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["ro", "nosuid", "noexec", "nodev"],
        },
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
    ]


class _Frozen:
    """A frozen record of ``__slots__`` (what ``dataclass(frozen=True)`` made, without loading dataclasses,
    inspect and ast for every container's start): equal and hashed by its fields, never assigned to."""

    __slots__ = ()

    def _names(self) -> tuple[str, ...]:
        names: tuple[str, ...] = getattr(type(self), "__slots__")  # noqa: B009 - the subclass's, typed
        return names

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, n) for n in self._names())

    def _init(self, **values: object) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._fields() == other._fields()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._fields())

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:  # copy, deepcopy and pickle: made again
        return type(self), self._fields()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in self._names()) + ")"


class Bind(_Frozen):
    """A ``-v HOST:CONTAINER[:ro]`` bind mount."""

    __slots__ = ("source", "destination", "readonly")  # noqa: RUF023 - the fields' order (repr, equality)
    source: str
    destination: str
    readonly: bool

    def __init__(self, source: str, destination: str, readonly: bool = False) -> None:
        self._init(source=source, destination=destination, readonly=readonly)

    def spec(self) -> str:
        return f"{self.source}:{self.destination}" + (":ro" if self.readonly else "")


def container_config(
    image_cfg: dict[str, Any],
    *,
    image_name: str,
    hostname: str,
    cmd: list[str] | None,
    entrypoint: list[str] | None,
    env: list[str],
    workdir: str | None,
    user: str | None,
    tty: bool,
    interactive: bool,
    labels: dict[str, str] | None = None,
    detach: bool = False,
    domainname: str = "",
    exposed: dict[str, Any] | None = None,
    mac_address: str = "",
) -> dict[str, Any]:
    """Docker's container ``Config``: image config overlaid with the ``run`` options, Docker's rules.

    ``entrypoint`` None keeps the image's; ``[]`` (``--entrypoint ""``) clears it. A given
    entrypoint drops the image's Cmd unless a command is given too.
    """
    ep: list[str] | None = list(image_cfg.get("Entrypoint") or []) or None
    command: list[str] | None = list(image_cfg.get("Cmd") or []) or None
    if entrypoint is not None:
        ep = list(entrypoint) or None
        command = None
    if cmd:
        command = list(cmd)
    merged_env = merge_env(list(image_cfg.get("Env") or []), env)
    cfg_labels = dict(image_cfg.get("Labels") or {})
    cfg_labels.update(labels or {})
    ports = dict(sorted({**(image_cfg.get("ExposedPorts") or {}), **(exposed or {})}.items()))
    return {
        "Hostname": hostname,
        "Domainname": domainname,
        "User": user if user is not None else str(image_cfg.get("User") or ""),
        "AttachStdin": interactive and not detach,
        "AttachStdout": not detach,
        "AttachStderr": not detach,
        **({"ExposedPorts": ports} if ports else {}),
        "Tty": tty,
        "OpenStdin": interactive,
        "StdinOnce": interactive and not detach,
        "Env": merged_env or None,
        "Cmd": command,
        "Image": image_name,
        "Volumes": image_cfg.get("Volumes"),
        "WorkingDir": workdir if workdir is not None else str(image_cfg.get("WorkingDir") or ""),
        "Entrypoint": ep,
        **({"MacAddress": mac_address} if mac_address else {}),
        "OnBuild": image_cfg.get("OnBuild"),
        "Labels": cfg_labels,
        **({"StopSignal": image_cfg["StopSignal"]} if image_cfg.get("StopSignal") else {}),
    }


def merge_env(base: list[str], extra: list[str]) -> list[str]:
    out = list(base)
    index = {e.split("=", 1)[0]: i for i, e in enumerate(out)}
    for item in extra:
        if "=" not in item:
            value = os.environ.get(item)
            if value is None:
                continue
            item = f"{item}={value}"
        key = item.split("=", 1)[0]
        if key in index:
            out[index[key]] = item
        else:
            index[key] = len(out)
            out.append(item)
    return out


def read_kv_file(path: str, *, from_environ: bool) -> list[str]:
    """Docker's ``--env-file``/``--label-file`` reader: one ``KEY[=VALUE]`` a line, blank lines and
    ``#`` comments skipped, a UTF-8 BOM dropped, the key's leading blanks trimmed; a key without a
    value takes the environment's when ``from_environ`` (env files) and is set there, else is dropped."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise StrataError(f"open {path}: {(e.strerror or str(e)).lower()}") from None
    out: list[str] = []
    for number, raw in enumerate(data.removeprefix(b"\xef\xbb\xbf").split(b"\n"), 1):
        try:
            line = raw.decode("utf-8").rstrip("\r").lstrip()
        except UnicodeDecodeError:
            raise StrataError(f"env file {path} contains invalid utf8 bytes at line {number}: {list(raw)}") from None
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        if any(ch in key for ch in " \t\n\v\f\r"):
            raise StrataError(f"poorly formatted environment: variable '{key}' contains whitespaces")
        if not key:
            raise StrataError(f"poorly formatted environment: no variable name on line '{line}'")
        if eq:
            out.append(f"{key}={value}")
        elif from_environ and key in os.environ:
            out.append(f"{key}={os.environ[key]}")
    return out


class RuntimeUser(_Frozen):
    __slots__ = ("uid", "gid", "additional_gids", "home")  # noqa: RUF023 - the fields' order (repr, equality)
    uid: int
    gid: int
    additional_gids: list[int]
    home: str

    def __init__(self, uid: int, gid: int, additional_gids: list[int] | None = None, home: str = "/") -> None:
        self._init(uid=uid, gid=gid, additional_gids=[] if additional_gids is None else additional_gids, home=home)

    def groups(self) -> list[int]:
        """The supplementary groups the process gets: its primary group first, as Docker sets them."""
        return [self.gid, *[g for g in self.additional_gids if g != self.gid]]


def _read_db(rootfs: Path, name: str) -> list[list[str]]:
    """A passwd/group file of the container's tree, read through the kernel's in-root resolution (a
    container may plant a FIFO or swap a symlink there: never blocks, never leaves the root)."""
    try:
        data = read_in_root(rootfs, name)
    except OSError:
        return []
    text = (data or b"").decode(errors="replace")
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def resolve_user(rootfs: Path, user: str) -> RuntimeUser:
    """Resolve Docker's ``user[:group]`` (names or numbers) in the container's passwd/group files."""
    given = bool(user)
    user = user or "root"
    uname, _, gname = user.partition(":")
    passwd = _read_db(rootfs, "/etc/passwd")
    groups = _read_db(rootfs, "/etc/group")
    entry = next((p for p in passwd if len(p) >= 6 and (p[0] == uname or p[2] == uname)), None)
    if entry is None and not given:  # no user asked for and none in the image (FROM scratch): uid 0, as Docker
        return RuntimeUser(0, 0, [], "/")
    if entry is not None:
        uid, gid, home, login = int(entry[2]), int(entry[3]), entry[5] or "/", entry[0]
    elif uname.isdigit():
        uid, gid, home, login = int(uname), 0, "/", ""
    else:
        raise StrataError(f"unable to find user {uname}: no matching entries in passwd file", exit_code=125)
    if gname:
        g = next((g for g in groups if len(g) >= 3 and (g[0] == gname or g[2] == gname)), None)
        if g is not None:
            gid = int(g[2])
        elif gname.isdigit():
            gid = int(gname)
        else:
            raise StrataError(f"unable to find group {gname}: no matching entries in group file", exit_code=125)
    extra: list[int] = []
    if login and not gname:
        for g in groups:
            if len(g) >= 4 and login in g[3].split(",") and g[2].isdigit() and int(g[2]) != gid:
                extra.append(int(g[2]))
    return RuntimeUser(uid, gid, extra, home)


def _sorted_mounts(hosts_files: dict[str, Path], binds: list[Bind], extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The network files and the user's mounts in Docker's order (sortMounts: fewer path components
    first, so a volume on ``/etc`` is under ``/etc/hosts``, never over it); a network file the user
    mounts a file of their own on is left out (Docker's HasMountFor)."""
    user = [{"destination": b.destination, "type": "bind", "source": b.source,
             "options": ["rbind", "rprivate"] + (["ro"] if b.readonly else [])} for b in binds] + list(extra)
    taken = {posixpath.normpath(m["destination"]) for m in user}
    network = [{"destination": dest, "type": "bind", "source": str(src), "options": ["rbind", "rprivate"]}
               for dest, src in hosts_files.items() if dest not in taken]
    return sorted(network + user, key=lambda m: len(posixpath.normpath(m["destination"]).split("/")))


def build_spec(
    *,
    config: dict[str, Any],
    args: list[str],
    rootfs: Path,
    user: RuntimeUser,
    network: str,
    hosts_files: dict[str, Path],
    binds: list[Bind],
    console_size: tuple[int, int] | None = None,
    cgroups_path: str | None = None,
    seccomp: dict[str, Any] | None = None,
    no_new_privileges: bool = False,
    netns_path: str | None = None,
    extra_mounts: list[dict[str, Any]] | None = None,
    readonly_root: bool = False,
    capabilities: list[str] | None = None,
) -> dict[str, Any]:
    """The OCI runtime config for a container (Docker's defaults, no rlimits above the current ones).

    ``seccomp`` is a Docker-format profile (None = unconfined)."""
    tty = bool(config.get("Tty"))
    env = process_env(config, tty)
    caps = DEFAULT_CAPS if capabilities is None else capabilities
    process: dict[str, Any] = {
        "terminal": tty,
        "user": {"uid": user.uid, "gid": user.gid, "additionalGids": user.groups()},
        "args": args,
        "env": env,
        "cwd": config.get("WorkingDir") or "/",
        "capabilities": {k: list(caps) for k in ("bounding", "effective", "permitted")},
        "noNewPrivileges": no_new_privileges,
    }
    if tty and console_size:
        process["consoleSize"] = {"height": console_size[0], "width": console_size[1]}
    mounts = _default_mounts() + _sorted_mounts(hosts_files, binds, extra_mounts or [])
    namespaces: list[dict[str, str]] = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    if network != "host":
        namespaces.append({"type": "network", **({"path": netns_path} if netns_path else {})})
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "maskedPaths": list(MASKED_PATHS),
        "readonlyPaths": list(READONLY_PATHS),
        "resources": {"devices": [dict(r) for r in _DEVICE_RULES]},
    }
    if cgroups_path:
        linux["cgroupsPath"] = cgroups_path
    if seccomp is not None:
        linux["seccomp"] = oci_seccomp(seccomp, list(caps))
    return {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": str(rootfs), "readonly": readonly_root},
        "hostname": str(config.get("Hostname") or ""),
        **({"domainname": str(config["Domainname"])} if config.get("Domainname") else {}),
        "mounts": mounts,
        "linux": linux,
    }


def process_env(config: dict[str, Any], tty: bool) -> list[str]:
    """Docker's CreateDaemonEnvironment: PATH, HOSTNAME, TERM (with a tty), then the container's Env
    replacing those keys in place or appended."""
    base = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={config.get('Hostname') or ''}"]
    if tty:
        base.append("TERM=xterm")
    return merge_env(base, [e for e in (config.get("Env") or []) if "=" in e])
