"""Namespaces, devices, groups, sysctls and ``/dev/shm`` as Docker's ``run`` flags set them: ``--pid``,
``--ipc`` (+ ``--shm-size``), ``--uts``, ``--userns``, ``--device``, ``--group-add``, ``--sysctl``.
Checked with Docker's errors (the CLI's up front, the daemon's at start), applied to the OCI spec;
every container's cgroup is ``/strata/<id>`` (Docker's ``/docker/<id>``), never under the caller's."""

from __future__ import annotations

import os
import posixpath
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

from strata.errors import StrataError

TYPE_CHECKING = False  # not typing's: a build step's container loads no typing
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "DEFAULT_SHM_SIZE",
    "apply_isolation",
    "cgroup_path",
    "check_peers",
    "check_sysctl",
    "host_devices",
    "isolation_host_config",
    "parse_device",
    "peer_pid",
    "release_shm",
]

DEFAULT_SHM_SIZE = 64 * 1024 * 1024
_SYSCTLS = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
            "kernel.shmmni", "kernel.shm_rmid_forced"}
_IPC_MODES = ("", "none", "private", "shareable", "host")

# (container reference, what for: "PID" | "IPC") -> the running container's (init pid, /dev/shm on the host)
PeerPid = Callable[[str, str], tuple[int, Path]]


def cgroup_path(cid: str, parent: str = "") -> str:
    """The container's cgroup under strata's own parent (as Docker's ``/docker/<id>``), or under a
    ``CgroupParent`` (cgroupfs: Go's ``filepath.Join(parent, id)``; a relative one is the runtime's own's)."""
    if not parent:
        return f"/strata/{cid}"
    return os.path.normpath(os.path.join(parent, cid))


def _real_root() -> bool:
    """Root of the host, not of a user namespace (rootless strata: runc makes no cgroup it may not)."""
    try:
        with open("/proc/self/uid_map") as f:
            return os.geteuid() == 0 and f.read().split() == ["0", "0", "4294967295"]
    except OSError:
        return False


def check_sysctl(text: str) -> tuple[str, str]:
    """Docker's ValidateSysctl: only namespaced sysctls (IPC's kernel.*, ``net.``, ``fs.mqueue.``)."""
    key, eq, value = text.partition("=")
    if eq and (key in _SYSCTLS or key.startswith(("net.", "fs.mqueue."))):
        return key, value
    raise ValueError(f"sysctl '{text}' is not whitelisted")


def _device_mode(mode: str) -> bool:
    return bool(mode) and all(ch in "rwm" for ch in mode) and len(set(mode)) == len(mode)


def parse_device(text: str) -> dict[str, str]:
    """``--device SRC[:DST][:MODE]`` as Docker's CLI checks and parses it (a DeviceMapping)."""
    parts = text.split(":")
    if len(parts) > 3 or not parts[0]:
        raise ValueError(f"bad format for path: {text}")
    dst, mode = parts[0], "rwm"
    if len(parts) == 3:
        if not _device_mode(parts[2]):
            raise ValueError(f"bad mode specified: {parts[2]}")
        dst, mode = parts[1], parts[2]
    elif len(parts) == 2:
        if _device_mode(parts[1]):
            mode = parts[1]
        else:
            dst = parts[1]
    if not posixpath.isabs(dst):
        raise ValueError(f"{dst} is not an absolute path")
    return {"PathOnHost": parts[0], "PathInContainer": dst, "CgroupPermissions": mode}


def _mode(flag: str, value: str, valid: tuple[str, ...], *, joinable: bool, what: str) -> str:
    if value in valid or (joinable and value.startswith("container:") and value.partition(":")[2]):
        return value
    raise StrataError(f"--{flag}: invalid {what} mode", exit_code=125)


def isolation_host_config(*, pid: str, ipc: str, uts: str, userns: str, shm_size: int, devices: list[str],
                          group_add: list[str], sysctls: list[str], hostname_given: bool) -> dict[str, Any]:
    """The HostConfig fields of the flags (Docker's CLI and daemon checks made at create)."""
    pid = _mode("pid", pid, ("", "host"), joinable=True, what="PID")
    uts = _mode("uts", uts, ("", "host"), joinable=False, what="UTS")
    userns = _mode("userns", userns, ("", "host", "keep-id"), joinable=False, what="USER")  # keep-id: rootless
    if ipc not in _IPC_MODES and not (ipc.startswith("container:") and ipc.partition(":")[2]):
        raise StrataError(f"Invalid IPC mode: {ipc}", exit_code=125)
    if uts == "host" and hostname_given:
        raise StrataError("conflicting options: hostname and the UTS mode", exit_code=125)
    return {"GroupAdd": list(group_add) or None, "IpcMode": ipc or "private", "PidMode": pid,
            "UTSMode": uts, "UsernsMode": userns, "ShmSize": shm_size or DEFAULT_SHM_SIZE,
            "Devices": [parse_device(d) for d in devices],
            **({"Sysctls": dict(check_sysctl(s) for s in sysctls)} if sysctls else {})}


def check_peers(hc: dict[str, Any], get: Callable[[str], Any]) -> None:
    """The containers ``--pid``/``--ipc container:X`` name exist (``get`` raises Docker's error)."""
    for key in ("PidMode", "IpcMode"):
        mode = str(hc.get(key) or "")
        if mode.startswith("container:"):
            get(mode.partition(":")[2])


def peer_pid(store: Any, ref: str, what: str) -> tuple[int, Path]:
    """(init pid, its /dev/shm on the host) of the running container whose namespace ``--pid``/``--ipc
    container:X`` joins (Docker's errors: missing, not running, an IPC that is not shareable)."""
    from strata.container.records import container_dir, pid_alive

    c = store.get(ref)
    prefix = "" if what == "PID" else f"can't join IPC of container {c.id}: "
    if c.state != "running" or not pid_alive(c.pid):
        raise StrataError(f"{prefix}Container {c.id} is not running", exit_code=125)
    if what == "IPC" and str(c.host_config.get("IpcMode")) not in ("shareable", "host"):
        raise StrataError(f"{prefix}non-shareable IPC (hint: use IpcMode:shareable for the donor container)",
                          exit_code=125)
    host_ipc = c.host_config.get("IpcMode") == "host"
    return int(c.pid), Path("/dev/shm") if host_ipc else container_dir(store.root, c.id) / "shm"


def _node(path: str, st: os.stat_result, where: str) -> dict[str, Any]:
    return {"path": where, "type": "c" if stat.S_ISCHR(st.st_mode) else "b", "major": os.major(st.st_rdev),
            "minor": os.minor(st.st_rdev), "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}


def _is_device(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)


def _device_nodes(mapping: dict[str, str]) -> list[dict[str, Any]]:
    """The spec devices of one ``--device``: the node (a symlink resolved), or every node under a
    directory (its paths moved under the container path), as Docker's devicesFromPath."""
    src, dst = mapping["PathOnHost"], mapping["PathInContainer"]
    resolved = os.path.realpath(src) if os.path.islink(src) else src
    try:
        st = os.stat(resolved)
    except OSError as e:
        raise StrataError(f'error gathering device information while adding custom device "{src}": '
                          f"{(e.strerror or str(e)).lower()}", exit_code=127 if e.errno == 2 else 125) from None
    if _is_device(st):
        return [_node(resolved, st, dst)]
    nodes = []
    if stat.S_ISDIR(st.st_mode):
        for top, _, files in os.walk(resolved):
            for name in sorted(files):
                path = os.path.join(top, name)
                try:
                    child = os.lstat(path)
                except OSError:
                    continue
                if _is_device(child):
                    nodes.append(_node(path, child, path.replace(resolved, dst, 1)))
    if not nodes:
        raise StrataError(f'error gathering device information while adding custom device "{src}": '
                          "not a device node", exit_code=125)
    return nodes


_SKIPPED_DEV_DIRS = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}


def host_devices(root: str = "/dev") -> list[dict[str, Any]]:
    """Every character and block device node under the host's ``/dev`` (runc's HostDevices: the
    ``pts``/``shm``/``mqueue``... directories, ``console``, symlinks and FIFOs left out), as spec
    devices: what ``--privileged`` gives a container, as Docker's does."""
    out: list[dict[str, Any]] = []
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return out
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if entry.name not in _SKIPPED_DEV_DIRS:
                out.extend(host_devices(entry.path))
            continue
        if entry.name == "console":
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            out.append({"path": entry.path, "type": "c" if stat.S_ISCHR(st.st_mode) else "b",
                        "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                        "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid})
    return out


def _group_ids(rootfs: Path, names: list[str]) -> list[int]:
    """``--group-add`` names or numbers, resolved in the container's ``/etc/group`` (Docker's error)."""
    from strata.container.spec import resolve_user

    out = []
    for name in names:
        if name.isdigit():
            out.append(int(name))
            continue
        try:
            out.append(resolve_user(rootfs, f"0:{name}").gid)
        except StrataError:
            raise StrataError(f"Unable to find group {name}: no matching entries in group file",
                              exit_code=125) from None
    return out


def _namespace(spec: dict[str, Any], kind: str, mode: str, peer_pid: PeerPid, what: str) -> None:
    """``host``: the namespace left out; ``container:X``: X's joined; else a new one (as built)."""
    namespaces = spec["linux"]["namespaces"]
    if mode == "host":
        namespaces[:] = [n for n in namespaces if n["type"] != kind]
    elif mode.startswith("container:"):
        pid, _ = peer_pid(mode.partition(":")[2], what)
        for n in namespaces:
            if n["type"] == kind:
                n["path"] = f"/proc/{pid}/ns/{kind}"


def _shareable_shm(cdir: Path, size: int) -> Path:
    """A shareable IPC's ``/dev/shm``: a tmpfs on the host at ``<container>/shm`` (as Docker's
    ``mounts/shm``) that the containers joining its IPC bind too; released when it stops (and at rm)."""
    shm = cdir / "shm"
    shm.mkdir(mode=0o700, exist_ok=True)
    if not os.path.ismount(shm):
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"nosuid,nodev,noexec,mode=1777,size={size}", "shm",
                               str(shm)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise StrataError(f"mounting shm tmpfs: {proc.stderr.strip()}")
    return shm


def release_shm(cdir: Path) -> None:
    """Unmount a shareable IPC's ``/dev/shm`` tmpfs (nothing when there is none)."""
    from strata.container.rootfs import umount

    shm = cdir / "shm"
    if os.path.ismount(shm):
        umount(str(shm), lazy=True)


def _shm(spec: dict[str, Any], hc: dict[str, Any], cdir: Path, peer_pid: PeerPid) -> None:
    """``/dev/shm``: ``--shm-size`` (64m), the host's with ``--ipc host``, none with ``--ipc none``, the
    donor's with ``--ipc container:X``, one on the host with ``--ipc shareable``."""
    mode = str(hc.get("IpcMode") or "private")
    size = int(hc.get("ShmSize") or DEFAULT_SHM_SIZE)
    mounts = [m for m in spec["mounts"] if m["destination"] != "/dev/shm"]
    source = None
    if mode == "host":
        source = Path("/dev/shm")
    elif mode == "shareable":
        source = _shareable_shm(cdir, size)
    elif mode.startswith("container:"):
        source = peer_pid(mode.partition(":")[2], "IPC")[1]
    if source is not None:
        mounts.append({"destination": "/dev/shm", "type": "bind", "source": str(source),
                       "options": ["rbind", "nosuid", "noexec", "nodev"]})
    elif mode != "none":
        mounts.append({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                       "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={size}"]})
    spec["mounts"] = mounts


def apply_isolation(spec: dict[str, Any], hc: dict[str, Any], cdir: Path, peer_pid: PeerPid) -> None:
    """Put the namespaces, devices, groups, sysctls, ``/dev/shm`` and the cgroup path into the spec
    (``cdir``: the container's directory, named by its ID)."""
    linux = spec["linux"]
    if _real_root():
        linux["cgroupsPath"] = cgroup_path(cdir.name, str(hc.get("CgroupParent") or ""))
    _namespace(spec, "pid", str(hc.get("PidMode") or ""), peer_pid, "PID")
    _namespace(spec, "uts", str(hc.get("UTSMode") or ""), peer_pid, "UTS")
    if hc.get("UTSMode") == "host":  # the host's name: none to set
        spec["hostname"] = ""
        spec.pop("domainname", None)
    ipc = str(hc.get("IpcMode") or "private")
    _namespace(spec, "ipc", "host" if ipc == "host" else ipc if ipc.startswith("container:") else "",
               peer_pid, "IPC")
    _shm(spec, hc, cdir, peer_pid)
    if hc.get("Sysctls"):
        linux["sysctl"] = dict(hc["Sysctls"])
    if hc.get("Privileged"):
        linux["devices"] = host_devices()
    for mapping in hc.get("Devices") or []:
        for node in _device_nodes(mapping):
            linux.setdefault("devices", []).append(node)
            linux["resources"].setdefault("devices", []).append(
                {"allow": True, "type": node["type"], "major": node["major"], "minor": node["minor"],
                 "access": mapping["CgroupPermissions"]})
    if hc.get("GroupAdd"):
        user = spec["process"]["user"]
        extra = _group_ids(Path(spec["root"]["path"]), list(hc["GroupAdd"]))
        user["additionalGids"] = [*user.get("additionalGids", []), *[g for g in extra
                                                                    if g not in user.get("additionalGids", [])]]
