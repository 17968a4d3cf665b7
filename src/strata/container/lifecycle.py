"""Container lifecycle without a daemon: create, start (attached or detached), stop, kill, pause,
remove, wait, and reconciling a record with the runtime when its monitor is gone."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from contextlib import contextmanager

from strata.atomicfile import write_bytes_atomic
from strata.container.isolation import apply_isolation, check_peers, peer_pid, release_shm
from strata.container.records import (
    FREEZE_MARKER,
    Container,
    ContainerStore,
    container_dir,
    new_id,
    pid_alive,
    random_name,
)
from strata.container.resources import apply_resources, capabilities
from strata.container.rootfs import Rootfs
from strata.container.runtime import Runtime, config_value, find_runtime
from strata.container.seccomp import normalize_security_opts, security_settings
from strata.container.spec import DEFAULT_CAPS, build_spec, container_config, resolve_user
from strata.container.specflags import apply_spec_flags
from strata.errors import Conflict, RuntimeFailure, StrataError
from strata.rootless.cgroups import strip_limits
from strata.rootless.mode import bind_host_paths, id_mappings, in_user_namespace

# A build step's container (``--network none``, no volumes, no terminal, no health check) loads only what
# it uses: the network endpoints and netavark, the volumes, the monitor's attach hub, socket, signal,
# dataclasses and typing come with the containers that need them (tests/build/test_cold_run_path.py keeps it so).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from typing import Any

    from strata.container.monitor import Attach
    from strata.container.network.endpoints import Pending
    from strata.container.volumes import MountSpec

__all__ = [
    "FREEZE_MARKER",
    "CreateOptions",
    "NetOptions",
    "StorageOptions",
    "container_lock",
    "create",
    "kill",
    "parse_restart_policy",
    "parse_signal",
    "pause",
    "reconcile",
    "record_event",
    "remove",
    "runtime_for",
    "start_attached",
    "start_detached",
    "stop",
    "unpause",
    "wait",
]

# The keep-id user namespace (strata.rootless.keepid, whose KEEP_ID this equals) is loaded only by
# the containers that use it: an ordinary container's (a build step's) create never does.
KEEP_ID = "keep-id"


def _userns_mode(value: str) -> str:
    from strata.rootless.keepid import userns_mode

    return userns_mode(value)


def _id_mappings(userns: str) -> dict[str, list[str]] | None:
    """``HostConfig.IDMappings``: the user namespace's (rootless), a keep-id container's own (Podman's)."""
    if userns != KEEP_ID:
        return id_mappings()
    from strata.rootless.keepid import keep_id_mappings

    return keep_id_mappings()


def _keep_id_mapping(host_config: dict[str, Any]) -> str:
    if host_config.get("UsernsMode") != KEEP_ID:
        return ""  # keep_id_mapping's answer for any other container
    from strata.rootless.keepid import keep_id_mapping

    return keep_id_mapping(host_config)


class _Options:
    """Keyword-only options with defaults (``_DEFAULTS``: a value or a factory of one); plain classes,
    not dataclasses: a build step's create loads no dataclass machinery (dataclasses, inspect, ast)."""

    __slots__ = ()
    _DEFAULTS: dict[str, Any] = {}

    def __init__(self, **given: Any) -> None:
        unknown = given.keys() - self._DEFAULTS.keys()
        if unknown:
            raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {sorted(unknown)[0]!r}")
        for name, default in self._DEFAULTS.items():
            if name in given:
                value = given[name]
            elif default is _REQUIRED:
                raise TypeError(f"{type(self).__name__}() missing required keyword argument: {name!r}")
            else:
                value = default() if callable(default) else default
            setattr(self, name, value)

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._DEFAULTS)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self._DEFAULTS)

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass is


_REQUIRED = object()


class StorageOptions(_Options):
    """``run``/``create``'s volume flags as given (HostConfig records them so)."""

    _DEFAULTS = {"binds": list, "mounts": list, "tmpfs": dict, "volumes_from": list, "read_only": False,
                 "restart": lambda: {"Name": "no", "MaximumRetryCount": 0}}
    __slots__ = tuple(_DEFAULTS)
    if TYPE_CHECKING:
        binds: list[str]
        mounts: list[dict[str, Any]]
        tmpfs: dict[str, str]
        volumes_from: list[str]
        read_only: bool
        restart: dict[str, Any]

        def __init__(self, *, binds: list[str] = ..., mounts: list[dict[str, Any]] = ...,
                     tmpfs: dict[str, str] = ..., volumes_from: list[str] = ..., read_only: bool = ...,
                     restart: dict[str, Any] = ...) -> None: ...


class NetOptions(_Options):
    """``run``/``create``'s networking flags."""

    _DEFAULTS = {"publish": list, "publish_all": False, "expose": list, "dns": list, "dns_search": list,
                 "dns_option": list, "add_host": list, "domainname": "", "mac_address": "", "ip": "", "aliases": list}
    __slots__ = tuple(_DEFAULTS)
    if TYPE_CHECKING:
        publish: list[str]
        publish_all: bool
        expose: list[str]
        dns: list[str]
        dns_search: list[str]
        dns_option: list[str]
        add_host: list[str]
        domainname: str
        mac_address: str
        ip: str
        aliases: list[str]

        def __init__(self, *, publish: list[str] = ..., publish_all: bool = ..., expose: list[str] = ...,
                     dns: list[str] = ..., dns_search: list[str] = ..., dns_option: list[str] = ...,
                     add_host: list[str] = ..., domainname: str = ..., mac_address: str = ..., ip: str = ...,
                     aliases: list[str] = ...) -> None: ...


class CreateOptions(_Options):
    """What ``create`` makes a container of: the image, the command, and the flags' settings."""

    _DEFAULTS = {
        "image_name": _REQUIRED, "image_id": _REQUIRED, "image_cfg": _REQUIRED, "lowers": _REQUIRED,
        "name": None, "cmd": None, "entrypoint": None, "env": list, "workdir": None, "user": None, "hostname": None,
        "network": "default", "mounts": list, "storage": StorageOptions, "tty": False, "interactive": False,
        "auto_remove": False, "driver": None, "runtime": None, "labels": dict, "detach": False,
        "security_opt": list, "net": NetOptions, "resources": dict, "stop_signal": None, "stop_timeout": None,
        "cidfile": "", "healthcheck": None, "userns": "", "volatile_rootfs": False,
    }
    __slots__ = tuple(_DEFAULTS)
    if TYPE_CHECKING:
        image_name: str
        image_id: str
        image_cfg: dict[str, Any]
        lowers: list[Path]
        name: str | None
        cmd: list[str] | None
        entrypoint: list[str] | None
        env: list[str]
        workdir: str | None
        user: str | None
        hostname: str | None
        network: str
        mounts: list[MountSpec]  # -v, --mount, --tmpfs in that order
        storage: StorageOptions
        tty: bool
        interactive: bool
        auto_remove: bool
        driver: str | None
        runtime: str | None
        labels: dict[str, str]
        detach: bool
        security_opt: list[str]
        net: NetOptions
        resources: dict[str, Any]  # HostConfig's limits, Init, CapAdd/Drop, Privileged
        stop_signal: str | None
        stop_timeout: int | None
        cidfile: str
        healthcheck: dict[str, Any] | None  # from the --health-* flags (Docker's CLI)
        userns: str  # --userns: "", host, or keep-id (rootless, Podman's)
        volatile_rootfs: bool  # a build step's: its overlay mounted volatile (Rootfs.prepare), never a user's

        def __init__(self, *, image_name: str, image_id: str, image_cfg: dict[str, Any], lowers: list[Path],
                     name: str | None = ..., cmd: list[str] | None = ..., entrypoint: list[str] | None = ...,
                     env: list[str] = ..., workdir: str | None = ..., user: str | None = ...,
                     hostname: str | None = ..., network: str = ..., mounts: list[MountSpec] = ...,
                     storage: StorageOptions = ..., tty: bool = ..., interactive: bool = ...,
                     auto_remove: bool = ..., driver: str | None = ..., runtime: str | None = ...,
                     labels: dict[str, str] = ..., detach: bool = ..., security_opt: list[str] = ...,
                     net: NetOptions = ..., resources: dict[str, Any] = ..., stop_signal: str | None = ...,
                     stop_timeout: int | None = ..., cidfile: str = ..., healthcheck: dict[str, Any] | None = ...,
                     userns: str = ..., volatile_rootfs: bool = ...) -> None: ...


def parse_restart_policy(raw: str, auto_remove: bool = False) -> dict[str, Any]:
    """``--restart no|on-failure[:N]|always|unless-stopped`` as Docker's CLI (format, then ``--rm``) and
    daemon (names, counts) check it, in that order: the CLI's errors exit 125, the daemon's 1 (``run``
    makes those 125 too)."""
    parts = raw.split(":") if raw else ["no"]
    if len(parts) > 2:
        raise StrataError("invalid restart policy format", exit_code=125)
    count = 0
    if len(parts) == 2:
        try:
            count = int(parts[1])
        except ValueError:
            raise StrataError("maximum retry count must be an integer", exit_code=125) from None
    name = parts[0] or "no"
    if auto_remove and name != "no":
        raise StrataError("Conflicting options: --restart and --rm", exit_code=125)
    if name not in ("no", "always", "on-failure", "unless-stopped"):
        raise StrataError(f"invalid restart policy '{name}'", exit_code=1)
    if count and name != "on-failure":
        raise StrataError(f"maximum retry count cannot be used with restart policy '{name}'", exit_code=1)
    if count < 0:
        raise StrataError("maximum retry count cannot be negative", exit_code=1)
    return {"Name": name, "MaximumRetryCount": count}


def runtime_for(root: Path, c: Container) -> Runtime:
    return Runtime(c.runtime, root / "runtime" / c.runtime)


@contextmanager
def container_lock(root: Path, cid: str) -> Iterator[None]:
    """An exclusive lock serialising commit, export and rm of one container."""
    path = container_dir(root, cid) / "lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _pick_driver(wanted: str | None) -> str | None:
    """The driver asked for (flag, then $STRATA_STORAGE_DRIVER, then the config file's
    ``storage-driver``); None = overlay if it mounts, else vfs."""
    configured = config_value("storage-driver")
    wanted = wanted or os.environ.get("STRATA_STORAGE_DRIVER") or (configured if isinstance(configured, str) else "")
    if not wanted:
        return None
    if wanted not in ("overlay", "overlay2", "vfs"):
        raise StrataError(f"unknown storage driver: {wanted}", exit_code=125)
    return "vfs" if wanted == "vfs" else "overlay"


def _hosts_files(cdir: Path, hostname: str) -> None:
    """The files bind-mounted over /etc/hosts, /etc/hostname, /etc/resolv.conf (hosts and resolv.conf
    are written again, with the container's address, when its network is set up)."""
    write_bytes_atomic(cdir / "hosts", b"")
    write_bytes_atomic(cdir / "hostname", (hostname + "\n").encode())
    write_bytes_atomic(cdir / "resolv.conf", b"")


def _net_host_config(net: NetOptions) -> dict[str, Any]:
    bindings: dict[str, list[dict[str, str]]] = {}
    if net.publish:
        from strata.container.network.ports import parse_publish
    for raw in net.publish:
        for key, entries in parse_publish(raw).items():
            bindings.setdefault(key, []).extend(entries)
    return {"PortBindings": dict(sorted(bindings.items())), "PublishAllPorts": net.publish_all, "Dns": list(net.dns),
            "DnsOptions": list(net.dns_option), "DnsSearch": list(net.dns_search),
            "ExtraHosts": list(net.add_host) or None}


def create(store: ContainerStore, opts: CreateOptions) -> Container:
    """Record a new container and prepare its rootfs (mounted for overlay)."""
    runtime = find_runtime(opts.runtime)
    if opts.workdir and not opts.workdir.startswith("/"):
        raise StrataError(
            f"the working directory '{opts.workdir}' is invalid, it needs to be an absolute path", exit_code=1
        )
    cid = new_id()
    hostname = opts.hostname or (_host_name() if opts.network == "host" else cid[:12])
    net_hc = _net_host_config(opts.net)
    exposed = {**_exposed_ports(opts.net.expose), **{key: {} for key in net_hc["PortBindings"]}}
    from strata.container.network.endpoints import check_conflicts, plan_networks

    check_conflicts(opts.network, bool(opts.hostname), net_hc, opts.net.mac_address)
    networks = plan_networks(store.root, store, opts.network, cid, opts.net.ip, opts.net.aliases)
    config = container_config(
        opts.image_cfg, image_name=opts.image_name, hostname=hostname, cmd=opts.cmd,
        entrypoint=opts.entrypoint, env=opts.env, workdir=opts.workdir, user=opts.user,
        tty=opts.tty, interactive=opts.interactive, labels=opts.labels, detach=opts.detach,
        domainname=opts.net.domainname, exposed=exposed, mac_address=opts.net.mac_address,
    )
    anonymous: dict[str, Any] = {m.target: {} for m in opts.mounts
                                 if m.type == "volume" and not m.source and m.from_flag == "-v"}
    if anonymous:  # Docker's CLI puts -v /path in Config.Volumes, not in HostConfig.Binds
        config["Volumes"] = {**(config.get("Volumes") or {}), **anonymous}
    _stop_config(config, opts)
    _capabilities(opts.resources)  # unknown capabilities refused before anything is made
    check_peers(opts.resources, store.get)  # --pid/--ipc container:X name one that exists
    argv = [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]
    if not argv:
        raise StrataError("No command specified", exit_code=125)
    wanted = _pick_driver(opts.driver)
    driver = wanted or "overlay"
    c = Container(
        id=cid, name=opts.name or random_name(store.names()), image_id=opts.image_id, image_name=opts.image_name,
        created=time.time(), path=argv[0], args=argv[1:], config=config,
        host_config=_host_config(opts, runtime, net_hc), driver=driver, runtime=runtime, networks=networks,
    )
    if opts.name is not None:
        _check_name(opts.name)
    inherited = _inherited_mounts(store, opts.storage.volumes_from)
    store.add(c)
    cdir = container_dir(store.root, cid)
    try:
        c = _prepare_rootfs(store, c, opts.lowers, wanted, opts.volatile_rootfs)
        _hosts_files(cdir, hostname)
        c = _attach_volumes(store, c, opts, inherited)
    except BaseException:
        try:
            Rootfs(cdir, c.driver).unmount()
        finally:
            shutil.rmtree(cdir, ignore_errors=True)
            store.delete(cid)
        raise
    _event(store, c, "create")
    return c


def _host_name() -> str:
    import socket  # --network host only

    return socket.gethostname()


def _exposed_ports(expose: list[str]) -> dict[str, dict[str, Any]]:
    """``--expose``'s ports (none given: the port parser is not loaded)."""
    if not expose:
        return {}
    from strata.container.network.ports import exposed_ports

    return exposed_ports(expose)


def _event(store: ContainerStore, c: Container, action: str, **extra: str) -> None:
    """The container's event in the store's journal (``strata events``)."""
    from strata.events import record_container

    record_container(store.root, action, c.id, c.name, c.image_name, c.config.get("Labels"), extra)


def record_event(store: ContainerStore, c: Container, action: str) -> None:
    """A container event a command records itself (``restart``)."""
    _event(store, c, action)


def _signal_number(sig: str) -> str:
    """A runtime signal (``TERM``, ``9``) as the number Docker's kill event shows."""
    if sig.isdigit():
        return sig
    import signal

    try:
        return str(int(getattr(signal, f"SIG{sig}")))
    except AttributeError:
        return sig


def _stop_config(config: dict[str, Any], opts: CreateOptions) -> None:
    """``--stop-signal`` (Docker's daemon: ``Invalid signal: X``) and ``--stop-timeout`` into Config."""
    if opts.stop_signal is not None:
        parse_signal(opts.stop_signal)
        config["StopSignal"] = opts.stop_signal
    if opts.stop_timeout is not None:
        config["StopTimeout"] = opts.stop_timeout
    check = _healthcheck(opts.healthcheck, opts.image_cfg.get("Healthcheck"))
    if check is not None:  # Docker's Config puts it right after Cmd
        items = list(config.items())
        at = [k for k, _ in items].index("Cmd") + 1
        config.clear()
        config.update([*items[:at], ("Healthcheck", check), *items[at:]])


def _healthcheck(given: dict[str, Any] | None, image: dict[str, Any] | None) -> dict[str, Any] | None:
    """The container's health check (neither given: none, and the health module is not loaded)."""
    if not given and not image:
        return None
    from strata.container.health import merge_healthcheck

    return merge_healthcheck(given, image)


def _host_config(opts: CreateOptions, runtime: str, net_hc: dict[str, Any]) -> dict[str, Any]:
    security_opt = normalize_security_opts(opts.security_opt)
    return {
        "NetworkMode": opts.network, "Binds": list(opts.storage.binds) or None, "ContainerIDFile": opts.cidfile,
        "Mounts": list(opts.storage.mounts) or None, "Tmpfs": dict(opts.storage.tmpfs) or None,
        "VolumesFrom": list(opts.storage.volumes_from) or None, "ReadonlyRootfs": opts.storage.read_only,
        "RestartPolicy": dict(opts.storage.restart), **opts.resources,
        "AutoRemove": opts.auto_remove, "Runtime": runtime, "SecurityOpt": security_opt or None,
        **net_hc, **({"IDMappings": maps} if (maps := _id_mappings(opts.userns)) else {}),  # rootless: the user namespace
        **({"UsernsMode": _userns_mode(opts.userns)} if opts.userns else {}),
    }


def _prepare_rootfs(
    store: ContainerStore, c: Container, lowers: list[Path], wanted: str | None, volatile: bool = False
) -> Container:
    """The rootfs made (and mounted for overlay; vfs when overlayfs cannot mount and none was asked for)."""
    rootfs = Rootfs(container_dir(store.root, c.id), c.driver)
    rootfs.prepare(lowers, _keep_id_mapping(c.host_config), volatile=volatile)
    if c.driver == "overlay":
        try:
            rootfs.mount()
        except StrataError:
            if wanted is not None or c.host_config.get("UsernsMode") == KEEP_ID:
                raise
            c = _fall_back_to_vfs(store, c, lowers)  # overlayfs cannot mount here
    return c


def _inherited_mounts(store: ContainerStore, volumes_from: list[str]) -> list[dict[str, Any]]:
    """``--volumes-from X[:ro|rw]``: X's mount points, read-only or read-write when asked."""
    if not volumes_from:
        return []
    from strata.container.volumes import parse_volumes_from

    out = []
    for raw in volumes_from:
        name, mode = parse_volumes_from(raw)
        for p in store.get(name).mounts:
            p = dict(p)
            if mode:
                p["RW"] = mode == "rw"
                p["Mode"] = mode
            p["_copy"] = False
            out.append(p)
    return out


def _attach_volumes(store: ContainerStore, c: Container, opts: CreateOptions,
                    inherited: list[dict[str, Any]]) -> Container:
    """Create the container's volumes (a new one filled from the image) and record its mount points
    (a container without any, as a build step's, needs no volume store: its record has none already)."""
    if not (opts.mounts or opts.image_cfg.get("Volumes") or inherited or c.mounts):
        return store.by_id(c.id) or c  # the record as stored, as the updates returned it
    from pathlib import Path

    from strata.container.volumes import VolumeStore, fill_from_image, mount_points

    vstore = VolumeStore(store.root)
    made: list[str] = []  # the volumes this create made: removed again if it fails
    try:
        with vstore.locked():  # made and recorded at once: a volume rm in between cannot take them
            points = mount_points(vstore, opts.mounts, dict(opts.image_cfg.get("Volumes") or {}), inherited, made)
            c = store.update(c.id, mounts=points)
        rootfs = Rootfs(container_dir(store.root, c.id), c.driver).path
        for p in points:
            if p["Type"] == "volume" and p.pop("_copy", False) and "_device" not in p:  # an empty one, as Docker
                fill_from_image(rootfs, p["Destination"], Path(p["Source"]))
        return store.update(c.id, mounts=points)
    except BaseException:
        for name in made:
            try:
                vstore.remove(name, [])
            except StrataError:
                pass
        raise


def _remove_anonymous(store: ContainerStore, c: Container) -> None:
    """Remove the container's anonymous volumes no other container uses (``rm -v``, ``--rm``)."""
    if not any(p.get("Type") == "volume" and p.get("_anonymous") for p in c.mounts):
        return
    from strata.container.volumes import VolumeStore

    vstore = VolumeStore(store.root)
    for p in c.mounts:
        if p.get("Type") != "volume" or not p.get("_anonymous"):
            continue
        def users(name: str = p["Name"]) -> list[str]:
            return [o.id for o in store.all() if o.id != c.id and any(m.get("Name") == name for m in o.mounts)]

        try:
            vstore.remove(p["Name"], users)
        except StrataError:
            continue


def _fall_back_to_vfs(store: ContainerStore, c: Container, lowers: list[Path]) -> Container:
    cdir = container_dir(store.root, c.id)
    for sub in ("upper", "work", "merged"):
        shutil.rmtree(cdir / sub, ignore_errors=True)
    Rootfs(cdir, "vfs").prepare(lowers)
    return store.update(c.id, driver="vfs")


def _check_name(name: str) -> None:
    import re

    if not re.fullmatch(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+", name):
        raise StrataError(
            f'Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed', exit_code=1
        )


def _prepare_bundle(store: ContainerStore, c: Container, console_fd: int | None) -> tuple[Container, Pending]:
    """Mount the rootfs, start setting the network up, write the bundle; the record as it then is and
    the network setup to wait for before the container starts."""
    if c.mounts:
        from strata.container.volumes import check_propagation

        check_propagation(c.mounts)
    rootfs = Rootfs(container_dir(store.root, c.id), c.driver)
    rootfs.mount()
    user = resolve_user(rootfs.path, str(c.config.get("User") or ""))
    from strata.container.network.endpoints import setup_network, teardown_network

    c, netns, pending = setup_network(store, c, reconcile)
    try:
        _write_bundle(store, c, rootfs, user, netns, console_fd)
    except BaseException:
        try:
            pending.wait()
        finally:
            teardown_network(store, c)
        raise
    if c.mounts:
        from strata.container.volumes import log_mounts

        log_mounts(store.root, c.id, c.mounts, "mount")
    return c, pending


def _files_of(store: ContainerStore, c: Container) -> Path:
    """The container whose hosts/hostname/resolv.conf ``c`` uses: its own, or the one whose network
    namespace it joins (``--network container:X``)."""
    mode = str(c.host_config.get("NetworkMode") or "")
    if mode.startswith("container:"):
        return container_dir(store.root, store.get(mode.partition(":")[2]).id)
    return container_dir(store.root, c.id)


def _write_bundle(store: ContainerStore, c: Container, rootfs: Rootfs, user: Any, netns: str | None,
                  console_fd: int | None) -> None:
    cdir = container_dir(store.root, c.id)
    files = _files_of(store, c)
    seccomp, no_new_privileges = security_settings(list(c.host_config.get("SecurityOpt") or []))
    hc = c.host_config
    mounts = _mounts_of(c.mounts)
    spec = build_spec(
        config=c.config, args=[c.path, *c.args], rootfs=rootfs.path, user=user,
        seccomp=seccomp, no_new_privileges=no_new_privileges,
        network=str(c.host_config.get("NetworkMode") or "default"),
        hosts_files={"/etc/resolv.conf": files / "resolv.conf", "/etc/hostname": files / "hostname",
                     "/etc/hosts": files / "hosts"},
        binds=[], extra_mounts=mounts[0], readonly_root=bool(hc.get("ReadonlyRootfs")),
        capabilities=_capabilities(hc), console_size=_console_size(console_fd), netns_path=netns,
    )
    if mounts[1]:
        spec["linux"]["rootfsPropagation"] = mounts[1]
    apply_resources(spec, hc)
    apply_isolation(spec, hc, cdir, lambda ref, what: peer_pid(store, ref, what))
    apply_spec_flags(spec, hc, c.id, c.networks)  # --gpus, --cgroup-parent, --cgroupns, --device-cgroup-rule
    if hc.get("Links") or any(n not in ("host", "none") for n in c.networks):
        # --link on the default bridge: variables, /etc/hosts; a user network's: the hosts lines of its own
        # links; and a bridged container's running parents get its address (Docker's updateParentHosts)
        from strata.container.links import apply_links

        apply_links(spec, store, c, files / "hosts")
    if in_user_namespace():  # rootless: only the limits the user's delegated cgroup can take
        strip_limits(spec, hc, c.id)
        bind_host_paths(spec, list(hc.get("Devices") or []))
        if hc.get("UsernsMode") == KEEP_ID:
            from strata.container.keepidfiles import add_user_files
            from strata.rootless.keepid import apply_keep_id

            userns = cdir / "userns"  # made with its network namespace (default network)
            apply_keep_id(spec, bool(c.config.get("User")), userns if userns.exists() else None)
            add_user_files(spec, cdir)
    # compact: the C encoder (an indented dump is the pure-Python one, ~5x slower on a seccomp profile)
    write_bytes_atomic(cdir / "config.json", json.dumps(spec).encode(), mode=0o600)  # has -e secrets


def _mounts_of(points: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    """The runtime's mounts of the mount points and the rootfs propagation they need (none: no volumes module)."""
    if not points:
        return [], None
    from strata.container.volumes import oci_mounts, rootfs_propagation

    return oci_mounts(points), rootfs_propagation(points)


def _console_size(console_fd: int | None) -> tuple[int, int] | None:
    if console_fd is None:
        return None
    from strata.container.tty import get_winsize

    return get_winsize(console_fd)


def _capabilities(hc: dict[str, Any]) -> list[str]:
    return capabilities(DEFAULT_CAPS, list(hc.get("CapAdd") or []), list(hc.get("CapDrop") or []),
                        bool(hc.get("Privileged")))


def _auto_remover(root: Path) -> Any:
    def remove_final(store: ContainerStore, c: Container) -> None:
        if c.host_config.get("AutoRemove"):
            _destroy(store, c)

    return remove_final


def start_attached(store: ContainerStore, c: Container, attach: Attach) -> int:
    """Run the container attached to ``attach``; returns its exit code. With a user in front (any
    stream attached) it runs under a detached monitor, so killing this process leaves it running."""
    c = _startable(store, c)
    _event(store, c, "attach")
    if attach.stdout is not None or attach.stderr is not None or attach.stdin is not None:
        return _start_in_front(store, c, attach)
    try:
        c, pending = _prepare_bundle(store, c, attach.stdout)
    except StrataError:
        if c.host_config.get("AutoRemove"):
            _destroy(store, c)
        raise
    from strata.container.monitor import spawn_restarter, supervise

    remover = _auto_remover(store.root)
    code = supervise(store, c, runtime_for(store.root, c), attach, remove=lambda final: remover(store, final),
                     ready=pending.wait)
    final = store.by_id(c.id)
    policy = str((c.host_config.get("RestartPolicy") or {}).get("Name") or "no")
    if final is not None and final.state == "exited" and policy != "no" and not final.manually_stopped:
        spawn_restarter(store, c.id, runtime_for(store.root, c), _again, code)
    return code


def _start_in_front(store: ContainerStore, c: Container, attach: Attach) -> int:
    try:
        c, pending = _prepare_bundle(store, c, attach.stdout)
        pending.wait()  # before the fork: the monitor must not inherit the networks lock
    except StrataError:
        if c.host_config.get("AutoRemove"):
            _destroy(store, c)
        raise
    from strata.container.monitor import run_attached

    code = run_attached(store, c, runtime_for(store.root, c), attach, _auto_remover(store.root), _again)
    if code is None:  # its monitor was killed: the keeper records the real exit
        code = wait(store, c).exit_code
    return code


def start_detached(store: ContainerStore, c: Container, client: Any = None, console_fd: int | None = None) -> None:
    """Start the container under a detached monitor; returns once it runs. ``client``: a socket pair,
    the first end served by the monitor as an attach client (``run -it``); ``console_fd``: the terminal
    whose size the container's pty starts with."""
    c = _startable(store, c)
    try:
        c, pending = _prepare_bundle(store, c, console_fd)
        pending.wait()  # before the fork: the monitor must not inherit the networks lock
    except StrataError:
        if c.host_config.get("AutoRemove"):
            _destroy(store, c)
        raise
    from strata.container.monitor import spawn_monitor

    spawn_monitor(store, c, runtime_for(store.root, c), remove=_auto_remover(store.root), again=_again, client=client)


def _again(store: ContainerStore, c: Container) -> tuple[Container, Any]:
    """The restart policy's next run (in the monitor): rootfs, network and bundle as a start makes them."""
    return _prepare_bundle(store, c, None)


def _startable(store: ContainerStore, c: Container) -> Container:
    c = reconcile(store, c)
    if c.state == "paused":
        raise Conflict(
            "cannot start a paused container, try unpause instead", exit_code=1
        )
    if c.state in ("running", "restarting"):
        return c
    if c.manually_stopped or c.restart_count:  # a start by the user: the policy applies again, from 0
        c = store.update(c.id, manually_stopped=False, restart_count=0)
    return c


def _end_restarts(store: ContainerStore, c: Container) -> Container:
    """The user stops or kills it: no more restarts; a container waiting to restart stays stopped
    (its monitor sees the mark within its next poll and records the exit)."""
    c = store.update(c.id, manually_stopped=True)
    deadline = time.monotonic() + 5.0
    while c.state == "restarting" and time.monotonic() < deadline:
        time.sleep(0.05)
        c = reconcile(store, store.by_id(c.id) or c)
    return c




def _thaw_if_orphaned(store: ContainerStore, c: Container) -> None:
    """A commit that paused the container and died before resuming it: resume it now."""
    marker = container_dir(store.root, c.id) / FREEZE_MARKER
    try:
        pid = int(marker.read_text() or "0")
    except (OSError, ValueError):
        return
    if pid_alive(pid):
        return
    try:
        runtime_for(store.root, c).resume(c.id)
    except StrataError:
        pass
    marker.unlink(missing_ok=True)


def reconcile(store: ContainerStore, c: Container) -> Container:
    """Bring a record claiming ``running``/``paused`` in line with reality when its monitor died,
    and thaw a container a killed commit left frozen."""
    if c.state == "restarting" and not pid_alive(c.monitor_pid, c.monitor_start):
        return store.update(c.id, state="exited", pid=0, monitor_pid=0)
    if c.state not in ("running", "paused"):
        if c.running or not (c.netns or c.ports):  # release_if_orphaned's own first check, without loading it
            return c
        from strata.container.network.endpoints import release_if_orphaned

        return release_if_orphaned(store, c)
    if c.state == "running":
        _thaw_if_orphaned(store, c)
    if pid_alive(c.monitor_pid, c.monitor_start):
        return c
    runtime = runtime_for(store.root, c)
    state = runtime.state(c.id)
    status = (state or {}).get("status")
    if status in ("running", "paused", "created"):
        if c.state != status and status != "created":
            c = store.update(c.id, state=status)
        return c
    runtime.delete(c.id, force=True)
    _teardown_network(store, c)
    try:
        Rootfs(container_dir(store.root, c.id), c.driver).unmount()
    except StrataError:
        pass
    from strata.container.monitor import read_exit_file

    # the monitor's own record of the exit when it could not write the records (a full disk)
    code, finished = read_exit_file(container_dir(store.root, c.id)) or (c.exit_code or 255, time.time())
    _event(store, c, "die", exitCode=str(code))
    return store.update(c.id, state="exited", exit_code=code, finished_at=finished, pid=0, monitor_pid=0)


def _teardown_network(store: ContainerStore, c: Container) -> None:
    """The endpoints' teardown; a container that never had a namespace, address or port (``--network
    none``, a build step) has nothing to undo, seen here as teardown_network sees it, without loading it."""
    cur = store.by_id(c.id) or c
    if not cur.netns and not cur.ports and not any(ep.get("IPAddress") for ep in cur.networks.values()):
        return
    from strata.container.network.endpoints import teardown_network

    teardown_network(store, c)


def wait(store: ContainerStore, c: Container, timeout: float | None = None,
         live: tuple[str, ...] = ("running", "paused")) -> Container:
    """Block until the container is no longer running (a container about to restart counts as
    stopped, as Docker's wait; ``live`` adds ``restarting`` to wait for the end); returns the record."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.01
    while True:
        cur = store.by_id(c.id)
        if cur is None:
            return c
        cur = reconcile(store, cur)
        if cur.state not in live:
            return cur
        if deadline is not None and time.monotonic() >= deadline:
            return cur
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def parse_signal(raw: str) -> str:
    """Docker's ParseSignal: a number above 0 or a name with or without ``SIG`` (any case), as the
    runtime takes it; ``Invalid signal: X`` otherwise."""
    import signal

    if raw.lstrip("-").isdigit():
        if int(raw) <= 0:
            raise StrataError(f"Invalid signal: {raw}")
        return str(int(raw))
    name = raw.upper().removeprefix("SIG")
    base, plus, offset = name.partition("+")
    base, minus, neg = base.partition("-") if not plus else (base, "", "")
    if base in ("RTMIN", "RTMAX"):
        step = offset if plus else neg
        if (plus or minus) and not step.isdigit():
            raise StrataError(f"Invalid signal: {raw}")
        number = int(getattr(signal, f"SIG{base}")) + (int(step) if plus else -int(step) if minus else 0)
        if not int(signal.SIGRTMIN) <= number <= int(signal.SIGRTMAX):
            raise StrataError(f"Invalid signal: {raw}")
        return str(number)
    if name not in {s.name.removeprefix("SIG") for s in signal.Signals}:
        raise StrataError(f"Invalid signal: {raw}")
    return name


def kill(store: ContainerStore, c: Container, signal_name: str = "KILL") -> None:
    sig = parse_signal(signal_name)
    c = reconcile(store, c)
    if c.state == "restarting":  # Docker: telling its monitor not to go on is enough
        _end_restarts(store, c)
        return
    if c.running and _ends_policy(c, sig):  # Docker's ExitOnNext: the restart policy ends here
        c = store.update(c.id, manually_stopped=True)
    if not c.running:
        raise Conflict(
            f"Cannot kill container: {c.name}: Container {c.id} is not running"
        )
    runtime = runtime_for(store.root, c)
    _event(store, c, "kill", signal=_signal_number(sig))
    if not runtime.kill(c.id, sig):
        cur = reconcile(store, store.by_id(c.id) or c)
        # the process may have exited between the record and the signal, before its monitor noticed
        if cur.running and ((runtime.state(c.id) or {}).get("status") in ("running", "paused")):
            raise StrataError(f"Cannot kill container: {c.name}: OCI runtime kill failed")
        raise Conflict(f"Cannot kill container: {c.name}: Container {c.id} is not running")


def _ends_policy(c: Container, sig: str) -> bool:
    """Docker's kill: SIGKILL, any signal when the image has no StopSignal, else the StopSignal itself."""
    stop_signal = str(c.config.get("StopSignal") or "")
    if not stop_signal or sig in ("KILL", "9"):
        return True
    try:
        return parse_signal(stop_signal) == sig
    except StrataError:
        return False


def stop(store: ContainerStore, c: Container, timeout: float | None = None) -> Container:
    """SIGTERM (or the container's StopSignal), then SIGKILL after ``timeout`` seconds (None: the
    container's StopTimeout, else 10; below 0: no SIGKILL); stopped is a no-op."""
    c = reconcile(store, c)
    if c.running or c.host_config.get("RestartPolicy", {}).get("Name", "no") != "no":
        c = _end_restarts(store, c)
    if not c.running:
        return c
    runtime = runtime_for(store.root, c)
    if timeout is None:
        configured = c.config.get("StopTimeout")
        timeout = 10.0 if configured is None else float(configured)
    try:
        stop_signal = parse_signal(str(c.config.get("StopSignal") or "TERM"))
    except StrataError:
        stop_signal = "TERM"
    _event(store, c, "kill", signal=_signal_number(stop_signal))
    runtime.kill(c.id, stop_signal)
    if c.state == "paused":
        runtime.resume(c.id)
    final = wait(store, c, timeout if timeout >= 0 else None, _LIVE)
    if final.running:
        _event(store, c, "kill", signal="9")
        runtime.kill(c.id, "KILL", all_processes=True)
        final = wait(store, c, 30.0, _LIVE)
    _event(store, c, "stop")
    return final


_LIVE = ("running", "paused", "restarting")


def pause(store: ContainerStore, c: Container) -> Container:
    c = reconcile(store, c)
    if c.state == "paused":
        raise Conflict(f"Container {c.id} is already paused")
    if c.state != "running":
        raise Conflict(f"Container {c.id} is not running")
    from strata.container.stats import has_own_cgroup

    if in_user_namespace() and not has_own_cgroup(c.pid, c.id):  # runc's freezer needs one (Podman's refusal)
        raise StrataError(f"Cannot pause container {c.id}: a rootless container without a cgroup of its own "
                          "cannot be paused (it needs cgroup v2 with the user's controllers delegated by systemd)")
    runtime_for(store.root, c).pause(c.id)
    _event(store, c, "pause")
    return store.update(c.id, state="paused")


def unpause(store: ContainerStore, c: Container) -> Container:
    c = reconcile(store, c)
    if c.state != "paused":
        raise Conflict(f"Container {c.id} is not paused")
    runtime_for(store.root, c).resume(c.id)
    _event(store, c, "unpause")
    return store.update(c.id, state="running")


def remove(store: ContainerStore, c: Container, *, force: bool = False, volumes: bool = False) -> None:
    """``rm``: refuses a running container unless forced (then kills it first)."""
    c = reconcile(store, c)
    if c.state == "restarting":
        if not force:
            raise Conflict(f"You cannot remove a restarting container {c.id}. Stop the container before "
                           "attempting removal or force remove")
        c = _end_restarts(store, c)
    if c.running:
        if not force:
            raise Conflict(
                f"You cannot remove a running container {c.id}. Stop the container before attempting "
                "removal or force remove"
            )
        c = store.update(c.id, manually_stopped=True)  # its monitor must not restart what is being removed
        runtime = runtime_for(store.root, c)
        if c.state == "paused":
            runtime.kill(c.id, "KILL", all_processes=True)
            try:  # thawed, the frozen tasks take their SIGKILL; runc's kill may have thawed them (and they are gone)
                runtime.resume(c.id)
            except RuntimeFailure:
                pass
        _event(store, c, "kill", signal="9")
        runtime.kill(c.id, "KILL", all_processes=True)
        c = wait(store, c, 30.0, _LIVE)
    with container_lock(store.root, c.id):
        if store.by_id(c.id) is None:
            return
        _destroy(store, c, volumes=volumes)


def _destroy(store: ContainerStore, c: Container, *, volumes: bool = False) -> None:
    cdir = container_dir(store.root, c.id)
    runtime_for(store.root, c).delete(c.id, force=True)
    _teardown_network(store, c)
    store.update(c.id, state="dead")
    Rootfs(cdir, c.driver).unmount()
    release_shm(cdir)
    trash = store.root / "containers" / f".removing-{c.id}"
    if cdir.exists():
        os.replace(cdir, trash)
    store.delete(c.id)
    _event(store, c, "destroy")
    shutil.rmtree(trash, ignore_errors=True)
    if volumes or c.host_config.get("AutoRemove"):
        _remove_anonymous(store, c)
