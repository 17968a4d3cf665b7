"""Container commands: run, create, start, stop, kill, restart, rm, wait, logs, exec, ps, pause,
unpause, diff, commit, export and the ``container`` group (inspect, ls, prune, and the rest)."""

from __future__ import annotations

import os
import sys
import time

from strata import jsonfast
from strata.cli.flagread import bool_flag
from strata.errors import Conflict, ImageNotFound, StrataError

TYPE_CHECKING = False  # not typing's: ps loads this module, and typing costs it a few ms
if TYPE_CHECKING:
    import argparse  # ps is parsed without argparse (strata.cli.listing); registering loads it
    from collections.abc import Callable
    from pathlib import Path
    from typing import Any

    from strata.cli.main import Context
    from strata.container.records import Container, ContainerStore
    from strata.container.spec import RuntimeUser

    Handler = Callable[[argparse.Namespace, "Context"], int]

# Container modules are imported inside the handlers: every strata command builds this parser.

__all__ = ["register", "sized_inspect"]



# --- helpers -----------------------------------------------------------------------------------


def _store(ctx: Context) -> ContainerStore:
    from strata.container.records import ContainerStore

    return ContainerStore(ctx.engine().root)


def _records(ctx: Context) -> ContainerStore:
    """The container table alone, for listing: the image store is not opened (a root with no
    container table yet goes the long way, which makes the store)."""
    from strata.container.records import ContainerStore

    root = ctx.store_dir()  # a str: ps loads no pathlib
    if not os.path.exists(os.path.join(root, "containers.db")):
        return _store(ctx)
    from strata.store.root import secure_root

    secure_root(root)  # as opening the store does: an older store's loose modes tightened by any command
    return ContainerStore(root)


def _as_run_error(e: StrataError) -> StrataError:
    """``docker run``/``create`` exit with 125 when the error is strata's own, not the command's."""
    if e.exit_code == 1:
        e.exit_code = 125
    return e


def _each(ctx: Context, refs: list[str], action: Callable[[ContainerStore, Container], str | None],
          missing_ok: bool = False, missing_prefix: str = "") -> int:
    """Apply ``action`` to each container, printing its answer; errors go to stderr, exit 1 at the end
    (``missing_ok``: a missing container's error is printed but fails nothing, as Docker's ``rm -f``;
    ``missing_prefix``: the daemon's words before a missing one's error, ``Cannot kill container: ``)."""
    failed = _each_failed(ctx, refs, action, missing_ok, missing_prefix)
    return 1 if failed else 0


def _each_failed(ctx: Context, refs: list[str], action: Callable[[ContainerStore, Container], str | None],
                 missing_ok: bool = False, missing_prefix: str = "") -> list[str]:
    """``_each``'s loop: the references that failed."""
    from strata.errors import NotFound

    failed: list[str] = []
    with _store(ctx) as store:
        for ref in refs:
            try:
                c = store.get(ref)
                out = action(store, c)
                if out is not None:
                    print(out, file=ctx.out, flush=True)
            except StrataError as e:
                missing = isinstance(e, NotFound)
                if not (missing_ok and missing):
                    failed.append(ref)
                where = f"{missing_prefix}{ref}: " if missing and missing_prefix else ""
                print(f"Error: {where}{e}", file=ctx.err, flush=True)
    return failed


# --- run / create ------------------------------------------------------------------------------


def _add_create_flags(p: argparse.ArgumentParser) -> None:
    import argparse  # here: ps runs without it

    p.add_argument("-i", "--interactive", action="store_true", help="keep STDIN open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    p.add_argument("--name", help="assign a name to the container")
    p.add_argument("-e", "--env", action="append", default=[], help="set environment variables")
    p.add_argument("--env-file", action="append", default=[], help="read in a file of environment variables")
    p.add_argument("-w", "--workdir", help="working directory inside the container")
    p.add_argument("-u", "--user", help="username or UID (format: <name|uid>[:<group|gid>])")
    p.add_argument("--entrypoint", help="overwrite the default ENTRYPOINT of the image")
    p.add_argument("-h", "--hostname", help="container host name")
    p.add_argument("--network", "--net", default="default",
                   help="connect a container to a network (bridge, host, none, container:NAME, a network name)")
    p.add_argument("--network-alias", "--net-alias", action="append", default=[], help="network-scoped alias")
    p.add_argument("-p", "--publish", action="append", default=[], help="publish a container's port(s) to the host")
    p.add_argument("-P", "--publish-all", action="store_true", help="publish all exposed ports to random ports")
    p.add_argument("--expose", action="append", default=[], help="expose a port or a range of ports")
    p.add_argument("--dns", action="append", default=[], help="set custom DNS servers")
    p.add_argument("--dns-search", action="append", default=[], help="set custom DNS search domains")
    p.add_argument("--dns-option", "--dns-opt", action="append", default=[], help="set DNS options")
    p.add_argument("--add-host", action="append", default=[], help="add a custom host-to-IP mapping (host:ip)")
    p.add_argument("--domainname", default="", help="container NIS domain name")
    p.add_argument("--mac-address", default="", help="container MAC address (e.g., 92:d0:c6:0a:29:33)")
    p.add_argument("--ip", default="", help="IPv4 address (e.g., 172.30.100.104)")
    p.add_argument("-v", "--volume", action="append", default=[], help="bind mount a volume [SRC:]DST[:MODE]")
    p.add_argument("--mount", action="append", default=[], help="attach a filesystem mount to the container")
    p.add_argument("--tmpfs", action="append", default=[], help="mount a tmpfs directory")
    p.add_argument("--volumes-from", action="append", default=[], help="mount volumes from the specified container(s)")
    p.add_argument("--read-only", action="store_true", help="mount the container's root filesystem as read only")
    p.add_argument("--restart", default="no", help="restart policy to apply when a container exits")
    p.add_argument("-m", "--memory", help="memory limit")
    p.add_argument("--memory-swap", help="swap limit equal to memory plus swap: '-1' to enable unlimited swap")
    p.add_argument("--cpus", help="number of CPUs")
    p.add_argument("-c", "--cpu-shares", default="0", help="CPU shares (relative weight)")
    p.add_argument("--cpuset-cpus", default="", help="CPUs in which to allow execution (0-3, 0,1)")
    p.add_argument("--pids-limit", help="tune container pids limit (set -1 for unlimited)")
    _add_cfs_flags(p)
    p.add_argument("--ulimit", action="append", default=[], help="ulimit options")
    p.add_argument("--init", action="store_true", help="run an init inside the container (tini)")
    p.add_argument("--cap-add", action="append", default=[], help="add Linux capabilities")
    p.add_argument("--cap-drop", action="append", default=[], help="drop Linux capabilities")
    p.add_argument("--privileged", action="store_true", help="give extended privileges to this container")
    _add_isolation_flags(p)
    p.add_argument("-l", "--label", action="append", default=[], help="set meta data on a container")
    p.add_argument("--label-file", action="append", default=[], help="read in a line delimited file of labels")
    p.add_argument("--cidfile", default="", help="write the container ID to the file")
    p.add_argument("--stop-signal", help="signal to stop a container (default SIGTERM)")
    p.add_argument("--stop-timeout", help="timeout (in seconds) to stop a container")
    p.add_argument("--health-cmd", help="command to run to check health")
    for what in ("interval", "timeout", "start-period"):
        p.add_argument(f"--health-{what}", default="0s", help=f"health check {what.replace('-', ' ')} (ms|s|m|h)")
    p.add_argument("--health-retries", default="0", help="consecutive failures needed to report unhealthy")
    p.add_argument("--no-healthcheck", action="store_true", help="disable any container-specified HEALTHCHECK")
    p.add_argument("--rm", action="store_true", help="automatically remove the container when it exits")
    p.add_argument("--runtime", help="OCI runtime to use (runc, crun)")
    p.add_argument("--userns", default="", help="user namespace: host, or keep-id (rootless: your uid inside)")
    p.add_argument("--storage-driver", help="rootfs driver: overlay (default when it mounts) or vfs")
    p.add_argument("--security-opt", action="append", default=[],
                   help="security options (seccomp=unconfined|PROFILE.json, no-new-privileges)")
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)


def _add_cfs_flags(p: argparse.ArgumentParser) -> None:
    """``--cpu-period/--cpu-quota/--cpu-rt-*/--cpuset-mems/--memory-reservation/--kernel-memory`` (issue 15)."""
    from strata.cli.resources import add_cfs_flags

    add_cfs_flags(p, run=True)


def _add_isolation_flags(p: argparse.ArgumentParser) -> None:
    """Namespaces, devices, sysctls, block I/O, OOM killer, logging, image choice (issue 9)."""
    p.add_argument("--device", action="append", default=[], help="add a host device to the container")
    p.add_argument("--group-add", action="append", default=[], help="add additional groups to join")
    p.add_argument("--pid", default="", help="PID namespace to use")
    p.add_argument("--ipc", default="", help="IPC mode to use")
    p.add_argument("--uts", default="", help="UTS namespace to use")
    p.add_argument("--sysctl", action="append", default=[], help="sysctl options")
    p.add_argument("--shm-size", help="size of /dev/shm")
    p.add_argument("--blkio-weight", help="block IO (relative weight), between 10 and 1000, or 0 to disable")
    p.add_argument("--oom-kill-disable", action="store_true", help="disable OOM Killer")
    p.add_argument("--log-driver", help="logging driver for the container (json-file, none)")
    p.add_argument("--log-opt", action="append", default=[], help="log driver options")
    p.add_argument("--platform", help="set platform if server is multi-platform capable")
    p.add_argument("--pull", default="missing", help='pull image before running ("always"|"missing"|"never")')


def _flag_error(cmd: str, flag: str, value: str, why: str) -> StrataError:
    return StrataError(f'invalid argument "{value}" for "{flag}" flag: {why}\nSee \'strata {cmd} --help\'.',
                       exit_code=125)


def _is_ip(text: str, v4: bool = False) -> bool:
    import ipaddress

    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return False
    return not v4 or addr.version == 4


def _net_options(args: argparse.Namespace) -> Any:
    """The networking flags, checked as Docker's CLI checks them."""
    import re

    from strata.container.lifecycle import NetOptions

    cmd = "run" if hasattr(args, "detach") else "create"
    for v in args.dns:
        if not _is_ip(v):
            raise _flag_error(cmd, "--dns", v, f"{v} is not an ip address")
    for v in args.add_host:
        host, colon, addr = v.partition(":")
        if not colon or not host:
            raise _flag_error(cmd, "--add-host", v, f'bad format for add-host: "{v}"')
        if not _is_ip(addr):
            raise _flag_error(cmd, "--add-host", v, f'invalid IP address in add-host: "{addr}"')
    if args.mac_address and not re.fullmatch(r"([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}", args.mac_address):
        raise StrataError(f"{args.mac_address} is not a valid mac address", exit_code=125)
    if args.ip and not _is_ip(args.ip, v4=True):
        raise _flag_error(cmd, "--ip", args.ip, f"{args.ip} is not an ip address")
    return NetOptions(
        publish=list(args.publish), publish_all=args.publish_all, expose=list(args.expose), dns=list(args.dns),
        dns_search=list(args.dns_search), dns_option=list(args.dns_option), add_host=list(args.add_host),
        domainname=args.domainname, mac_address=args.mac_address.lower(), ip=args.ip,
        aliases=list(args.network_alias),
    )


def _storage_options(args: argparse.Namespace) -> tuple[list[Any], Any]:
    """The volume flags, checked up front with Docker's errors: (mount specs, StorageOptions)."""
    from strata.container.lifecycle import StorageOptions, parse_restart_policy
    from strata.container.volumes import (
        parse_mount_flag,
        parse_tmpfs_flag,
        parse_volume_flag,
        parse_volumes_from,
    )

    cmd = "run" if hasattr(args, "detach") else "create"
    restart = parse_restart_policy(args.restart, auto_remove=args.rm)
    specs = [parse_volume_flag(v) for v in args.volume]
    docs = []
    for raw in args.mount:
        try:
            spec = parse_mount_flag(raw)
        except StrataError as e:
            if e.exit_code != 125:  # the daemon's check (exit 1 for create), not the flag's syntax
                raise
            raise _flag_error(cmd, "--mount", raw, str(e)) from None
        specs.append(spec)
        docs.append({"Type": spec.type, **({"Source": spec.source} if spec.source else {}), "Target": spec.target,
                     **({"ReadOnly": True} if spec.readonly else {})})
    tmpfs = {}
    for raw in args.tmpfs:
        specs.append(parse_tmpfs_flag(raw))
        path, _, opts = raw.partition(":")
        tmpfs[path] = opts
    for raw in args.volumes_from:
        parse_volumes_from(raw)
    binds = [raw for raw, spec in zip(args.volume, specs, strict=False) if spec.source]  # -v /path: Config.Volumes
    return specs, StorageOptions(binds=binds, mounts=docs, tmpfs=tmpfs,
                                 volumes_from=list(args.volumes_from), read_only=args.read_only, restart=restart)


def _resources(args: argparse.Namespace) -> dict[str, Any]:
    """The resource and privilege flags as HostConfig fields (Docker's CLI errors for bad values)."""
    from strata.cli.resources import cfs_fields, spec_fields, tuning_fields
    from strata.container.resources import (
        parse_cpus,
        parse_int64,
        parse_ram,
        parse_uint16,
        parse_ulimit,
        resource_host_config,
    )

    cmd = "run" if hasattr(args, "detach") else "create"
    for flag, value, check in (("-m, --memory", args.memory, parse_ram), ("--memory-swap", args.memory_swap,
                               lambda v: v == "-1" or parse_ram(v)), ("--cpus", args.cpus, parse_cpus),
                               ("--shm-size", args.shm_size, parse_ram), ("--blkio-weight", args.blkio_weight,
                                                                         parse_uint16),
                               ("-c, --cpu-shares", args.cpu_shares, parse_int64),
                               ("--pids-limit", args.pids_limit, parse_int64)):
        try:
            if value is not None:
                check(value)
        except ValueError as e:
            raise _flag_error(cmd, flag, value, str(e)) from None
    for u in args.ulimit:
        try:
            parse_ulimit(u)
        except ValueError as e:
            raise _flag_error(cmd, "--ulimit", u, str(e)) from None
    pids = parse_int64(args.pids_limit) if args.pids_limit is not None else None
    extra = cfs_fields(args, lambda flag, value, e: _flag_error(cmd, flag, value, e))
    extra.update(tuning_fields(args, cmd, lambda flag, value, e: _flag_error(cmd, flag, value, e)))
    extra.update(spec_fields(args, cmd, lambda flag, value, e: _flag_error(cmd, flag, value, e)))
    hc = resource_host_config(args.memory, args.memory_swap, args.cpus, parse_int64(args.cpu_shares),
                              args.cpuset_cpus, pids, list(args.ulimit), oom_kill_disable=args.oom_kill_disable,
                              blkio_weight=parse_uint16(args.blkio_weight) if args.blkio_weight else 0, extra=extra)
    if args.init:
        hc["Init"] = True
    return {**hc, **_isolation(args, cmd), "CapAdd": list(args.cap_add) or None,
            "CapDrop": list(args.cap_drop) or None, "Privileged": args.privileged}


def _isolation(args: argparse.Namespace, cmd: str) -> dict[str, Any]:
    """``--pid/--ipc/--uts/--userns/--device/--group-add/--sysctl/--shm-size/--log-*`` as HostConfig."""
    from strata.container.isolation import check_sysctl, isolation_host_config, parse_device
    from strata.container.logopts import log_config
    from strata.container.resources import parse_ram

    for s in args.sysctl:
        try:
            check_sysctl(s)
        except ValueError as e:
            raise _flag_error(cmd, "--sysctl", s, str(e)) from None
    for d in args.device:
        try:
            parse_device(d)
        except ValueError as e:
            raise StrataError(f"{e}.\nSee 'strata {cmd} --help'.", exit_code=125) from None
    try:
        hc = isolation_host_config(pid=args.pid, ipc=args.ipc, uts=args.uts, userns=args.userns,
                                   shm_size=parse_ram(args.shm_size) if args.shm_size else 0,
                                   devices=list(args.device), group_add=list(args.group_add),
                                   sysctls=list(args.sysctl), hostname_given=bool(args.hostname))
    except StrataError as e:
        if str(e).startswith("--"):  # the CLI's own checks: with its usage line
            raise StrataError(f"{e}.\nSee 'strata {cmd} --help'.", exit_code=125) from None
        raise
    return {**hc, "LogConfig": log_config(args.log_driver, list(args.log_opt), cmd)}


def _create(ctx: Context, args: argparse.Namespace, store: ContainerStore) -> Container:
    from strata.container import lifecycle as lc
    from strata.container.resources import resource_warnings

    specs, storage = _storage_options(args)
    resources = _resources(args)
    warnings = resource_warnings(resources)
    if args.oom_kill_disable and not resources.get("Memory"):  # Docker's CLI says so first
        warnings.insert(0, "Disabling the OOM killer on containers without setting a '-m/--memory' limit may be "
                           "dangerous.")
    engine = ctx.engine()
    image_id = _image_for(ctx, args)
    from strata.cli.resources import attach_config, check_volume_driver, record_extras
    from strata.container.links import check_links
    from strata.container.specflags import endpoint_addresses

    check_volume_driver(ctx, args, specs)
    attached = attach_config(args) if args.attach and not getattr(args, "detach", False) else None
    links = check_links(args.link, args.network, store.get)
    addresses = endpoint_addresses(args.network, args.ip6, list(args.link_local_ip))
    image_cfg = engine.image_config(image_id).data.get("config") or {}
    env, labels = _env_and_labels(args)
    entrypoint = None if args.entrypoint is None else ([args.entrypoint] if args.entrypoint else [])
    opts = lc.CreateOptions(
        image_name=args.image, image_id=str(image_id), image_cfg=image_cfg, lowers=engine.layer_dirs(image_id),
        name=args.name, cmd=list(args.command) or None, entrypoint=entrypoint, env=env,
        workdir=args.workdir, user=args.user, hostname=args.hostname, network=args.network,
        mounts=specs, storage=storage, tty=args.tty, interactive=args.interactive,
        auto_remove=args.rm, driver=args.storage_driver, runtime=args.runtime, labels=labels,
        detach=bool(getattr(args, "detach", False)), security_opt=list(args.security_opt),
        net=_net_options(args), resources=resources, stop_signal=args.stop_signal,
        stop_timeout=_stop_timeout(args), cidfile=args.cidfile, healthcheck=_healthcheck(args),
        userns=args.userns,
    )
    c = lc.create(store, opts)
    c = record_extras(store, c, attached, links, addresses, list(args.link))  # -a, --link, --ip6, --link-local-ip
    from strata.cli.unshare import warn_rootless

    warn_rootless(ctx, c.host_config)  # limits a rootless container cannot have: Docker's warnings
    for w in warnings:
        print(f"WARNING: {w}", file=ctx.err)
    return c


def _healthcheck(args: argparse.Namespace) -> dict[str, Any] | None:
    """The ``--health-*`` flags as Docker's CLI makes ``Config.Healthcheck`` (its flag errors)."""
    from strata.container.health import healthcheck_config, parse_duration

    cmd = "run" if hasattr(args, "detach") else "create"
    durations = {}
    for key, flag in (("Interval", "interval"), ("Timeout", "timeout"), ("StartPeriod", "start-period")):
        text = getattr(args, f"health_{flag.replace('-', '_')}")
        try:
            durations[key] = parse_duration(text)
        except ValueError as e:
            raise _flag_error(cmd, f"--health-{flag}", text, str(e)) from None
    try:
        retries = int(args.health_retries)
    except ValueError:
        raise _flag_error(cmd, "--health-retries", args.health_retries,
                          f'strconv.ParseInt: parsing "{args.health_retries}": invalid syntax') from None
    return healthcheck_config(args.health_cmd, durations, retries, args.no_healthcheck)


def _stop_timeout(args: argparse.Namespace) -> int | None:
    """``--stop-timeout`` as Docker's flag parser reads an int (its strconv error for anything else)."""
    text = args.stop_timeout
    if text is None:
        return None
    try:
        return int(text, 0) if text.strip() == text and "_" not in text else int("!")
    except ValueError:
        cmd = "run" if hasattr(args, "detach") else "create"
        raise _flag_error(cmd, "--stop-timeout", text, f'strconv.ParseInt: parsing "{text}": invalid syntax') from None


def _env_and_labels(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """Docker's CLI: the ``--env-file``/``--label-file`` lines first, then ``-e``/``-l`` (later wins)."""
    from strata.container.spec import read_kv_file

    cmd = "run" if hasattr(args, "detach") else "create"
    for item in args.env:  # opts.ValidateEnv, while the flags are parsed
        if item.startswith("="):
            raise StrataError(f'invalid argument "{item}" for "-e, --env" flag: invalid environment variable: '
                              f"{item}\nSee 'strata {cmd} --help'.", exit_code=125)
    try:
        env = [e for f in args.env_file for e in read_kv_file(f, from_environ=True)]
        label_items = [x for f in args.label_file for x in read_kv_file(f, from_environ=False)]
    except StrataError as e:
        raise StrataError(f"{e}.\nSee 'strata {cmd} --help'.", exit_code=125) from None
    labels = {}
    for item in [*label_items, *args.label]:
        key, _, value = item.partition("=")
        labels[key] = value
    return [*env, *args.env], labels


def _cidfile(args: argparse.Namespace) -> int | None:
    """Docker's ``--cidfile``: refused when the file exists, made before the container is."""
    if not args.cidfile:
        return None
    cmd = "run" if hasattr(args, "detach") else "create"
    try:
        return os.open(args.cidfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        why = f"container ID file found, make sure the other container isn't running or delete {args.cidfile}"
    except OSError as e:
        why = f"failed to create the container ID file: open {args.cidfile}: {(e.strerror or str(e)).lower()}"
    if cmd == "create":  # Docker's create returns the error as is; run reports it with its usage line
        raise StrataError(why)
    # Docker's run: 127 when the error mentions a missing file
    raise StrataError(f"{why}.\nSee 'strata run --help'.", exit_code=127 if "no such file" in why else 125)


def _create_with_cidfile(ctx: Context, args: argparse.Namespace, store: ContainerStore) -> Container:
    """``_create``, the ID written to ``--cidfile`` (the file removed when the create fails)."""
    fd = _cidfile(args)
    if fd is None:
        return _create(ctx, args, store)
    try:
        c = _create(ctx, args, store)
        os.write(fd, c.id.encode())
    except BaseException:
        os.unlink(args.cidfile)
        raise
    finally:
        os.close(fd)
    return c


def _image_for(ctx: Context, args: argparse.Namespace) -> Any:
    """The image to run: ``--pull always`` pulls first, ``missing`` (the default; anything else too, as
    Docker 20.10) pulls a missing one, ``never`` does not; a local image for another ``--platform``
    counts as missing (Docker's NotFound when it is not pulled)."""
    from strata.api import pull
    from strata.cli.distribution import ProgressPrinter
    from strata.container.imagechoice import mismatch, parse_platform, platform_string
    from strata.reference import parse_docker_ref

    engine = ctx.engine()
    wanted = parse_platform(args.platform) if args.platform else None
    shown = platform_string(*wanted) if wanted else None
    if args.pull == "always":
        pull(args.image, platform=shown, progress=ProgressPrinter(ctx.err), engine=engine)
    try:
        image_id = engine.resolve_image(args.image)
    except ImageNotFound:
        if args.pull == "never" or not _pull_missing(ctx, args.image, shown):
            raise
        image_id = engine.resolve_image(args.image)
    why = mismatch(args.image, wanted, engine.image_config(image_id).data) if wanted else None
    if why is not None and args.pull not in ("never", "always"):
        print(f"Unable to find image '{parse_docker_ref(args.image).familiar_string()}' locally", file=ctx.err)
        pull(args.image, platform=shown, progress=ProgressPrinter(ctx.err), engine=engine)
        image_id = engine.resolve_image(args.image)
        why = mismatch(args.image, wanted, engine.image_config(image_id).data) if wanted else None
    if why is not None:
        raise StrataError(why, exit_code=125)
    return image_id


def _pull_missing(ctx: Context, name: str, platform: str | None = None) -> bool:
    """Docker's run/create: a missing image named by reference is pulled (progress on stderr)."""
    from strata.api import pull_if_missing
    from strata.cli.distribution import ProgressPrinter

    return pull_if_missing(ctx.engine(), name, progress=ProgressPrinter(ctx.err), platform=platform)


def _cmd_create(args: argparse.Namespace, ctx: Context) -> int:
    with _store(ctx) as store:  # Docker's create: a daemon's error exits 1 (a flag's: 125, as run)
        c = _create_with_cidfile(ctx, args, store)
    print(c.id, file=ctx.out)
    return 0


def _not_a_tty(ctx: Context) -> bool:
    """Docker's CheckTty: ``-i -t`` needs a terminal on stdin."""
    if os.isatty(0):
        return False
    print("the input device is not a TTY", file=ctx.err)
    return True


def _cmd_run(args: argparse.Namespace, ctx: Context) -> int:
    from strata.cli.containerio import attach_streams, detach_keys, run_detachable
    from strata.container import lifecycle as lc
    from strata.container.monitor import Attach

    streams = attach_streams(args)  # -a STREAM
    if args.interactive and args.tty and not args.detach and _not_a_tty(ctx):
        return 1
    store = _store(ctx)
    try:
        try:
            c = _create_with_cidfile(ctx, args, store)
            ctx.close()  # the container may run for long: do not hold the image store open
            if args.detach:
                try:
                    lc.start_detached(store, c)
                finally:  # Docker prints the ID of a created container even when its start fails
                    print(c.id, file=ctx.out)
                return 0
        except StrataError as e:
            raise _as_run_error(e) from None
        ctx.out.flush()
        null = os.open(os.devnull, os.O_WRONLY)  # a stream -a leaves out
        attach = Attach(stdin=0 if args.interactive or "stdin" in (streams or ()) else None,
                        stdout=1 if streams is None or "stdout" in streams else null,
                        stderr=2 if streams is None or "stderr" in streams else null)
        try:
            if (args.interactive and args.tty) or not args.sig_proxy:  # detachable: strata.cli.containerio
                return run_detachable(ctx, store, c, detach_keys(ctx, args.detach_keys), sig_proxy=args.sig_proxy,
                                      stdin=args.interactive)
            return lc.start_attached(store, c, attach)
        except StrataError as e:
            raise _as_run_error(e) from None
    finally:
        store.close()


# --- lifecycle commands ------------------------------------------------------------------------


def _cmd_start(args: argparse.Namespace, ctx: Context) -> int:
    from strata.container import lifecycle as lc
    from strata.container.monitor import Attach

    if args.all:
        return _start_all(ctx, args)
    if not args.containers:
        raise StrataError('"strata start" requires at least 1 argument.\nSee \'strata start --help\'.')
    if args.attach or args.interactive:
        if len(args.containers) > 1:
            raise StrataError("you cannot start and attach multiple containers at once")
        with _store(ctx) as store:
            c = store.get(args.containers[0])
            if args.interactive and c.config.get("Tty") and _not_a_tty(ctx):
                return 1
            attach = Attach(stdin=0 if args.interactive else None, stdout=1, stderr=2)
            if args.interactive and c.config.get("Tty") and c.config.get("OpenStdin"):  # detachable
                from strata.cli.containerio import detach_keys, reattach, run_detachable

                keys = detach_keys(ctx, args.detach_keys)
                if lc.reconcile(store, c).state == "running":
                    return reattach(ctx, store, c, keys)
                return run_detachable(ctx, store, c, keys)
            return lc.start_attached(store, c, attach)

    def start(store: ContainerStore, c: Container) -> str:
        c = lc.reconcile(store, c)
        if c.state != "running":
            lc.start_detached(store, c)
        return _as_given(args, c)

    failed = _each_failed(ctx, args.containers, start)
    if failed:  # Docker's CLI, after each container's own error
        raise StrataError(f"failed to start containers: {', '.join(failed)}")
    return 0


def _start_all(ctx: Context, args: argparse.Namespace) -> int:
    """``start --all`` (at boot): every container whose restart policy brings it back - ``always``, and
    ``unless-stopped`` unless the user stopped it - or those named, the same way."""
    from strata.container import lifecycle as lc

    failed = False
    with _store(ctx) as store:
        for c in reversed(store.all()):  # oldest first
            if args.containers and not {c.id, c.name} & set(args.containers):
                continue
            c = lc.reconcile(store, c)
            policy = str((c.host_config.get("RestartPolicy") or {}).get("Name") or "no")
            if c.running or not (policy == "always" or (policy == "unless-stopped" and not c.manually_stopped)):
                continue
            try:
                lc.start_detached(store, c)
                print(c.name, file=ctx.out)
            except StrataError as e:
                failed = True
                print(f"Error: {c.name}: {e}", file=ctx.err)
    return 1 if failed else 0


def _as_given(args: argparse.Namespace, c: Container) -> str:
    for ref in args.containers:
        if ref in (c.id, c.name, "/" + c.name) or c.id.startswith(ref):
            return str(ref)
    return c.name


def _cmd_stop(args: argparse.Namespace, ctx: Context) -> int:
    from strata.container import lifecycle as lc

    def stop(store: ContainerStore, c: Container) -> str:
        lc.stop(store, c, None if args.time is None else float(args.time))
        return _as_given(args, c)

    return _each(ctx, args.containers, stop)


def _cmd_restart(args: argparse.Namespace, ctx: Context) -> int:
    from strata.container import lifecycle as lc

    def restart(store: ContainerStore, c: Container) -> str:
        c = lc.stop(store, c, None if args.time is None else float(args.time))
        lc.start_detached(store, c)
        lc.record_event(store, c, "restart")
        return _as_given(args, c)

    return _each(ctx, args.containers, restart)


def _cmd_kill(args: argparse.Namespace, ctx: Context) -> int:
    from strata.container import lifecycle as lc

    def kill(store: ContainerStore, c: Container) -> str:
        lc.kill(store, c, args.signal)
        return _as_given(args, c)

    try:  # the daemon reads the signal before it looks the container up: each one fails on it
        lc.parse_signal(args.signal)
    except StrataError as e:
        for _ in args.containers:
            print(f"Error: {e}", file=ctx.err, flush=True)
        return 1
    return _each(ctx, args.containers, kill, missing_prefix="Cannot kill container: ")


def _cmd_pause(args: argparse.Namespace, ctx: Context) -> int:
    from strata.container import lifecycle as lc

    def pause(store: ContainerStore, c: Container) -> str:
        lc.pause(store, c)
        return _as_given(args, c)

    return _each(ctx, args.containers, pause)


def _cmd_unpause(args: argparse.Namespace, ctx: Context) -> int:
    from strata.container import lifecycle as lc

    def unpause(store: ContainerStore, c: Container) -> str:
        lc.unpause(store, c)
        return _as_given(args, c)

    return _each(ctx, args.containers, unpause)


def _cmd_rm(args: argparse.Namespace, ctx: Context) -> int:
    from strata.container import lifecycle as lc

    if args.link:  # rm --link /parent/alias (strata.container.links)
        from strata.cli.resources import remove_links

        with _store(ctx) as store:
            return remove_links(ctx, store, args.containers, args.force)

    def rm(store: ContainerStore, c: Container) -> str:
        lc.remove(store, c, force=args.force, volumes=args.volumes)
        return _as_given(args, c)

    return _each(ctx, args.containers, rm, missing_ok=args.force)


def _cmd_wait(args: argparse.Namespace, ctx: Context) -> int:
    from strata.container import lifecycle as lc

    def wait(store: ContainerStore, c: Container) -> str:
        return str(lc.wait(store, c).exit_code)

    return _each(ctx, args.containers, wait)


def _tail_lines(text: str) -> int | None:
    """The daemon's ``--tail``: a whole number of lines (strconv.Atoi), anything else every line."""
    digits = text[1:] if text[:1] == "+" else text
    if not digits or not all("0" <= ch <= "9" for ch in digits):
        return None
    return int(digits)


def _cmd_logs(args: argparse.Namespace, ctx: Context) -> int:
    from strata.container import lifecycle as lc
    from strata.container.logopts import entry_line, log_window
    from strata.container.logs import read_entries
    from strata.container.monitor import log_path

    window = log_window(args.since, args.until)
    with _store(ctx) as store:
        c = store.get(args.container)
        if (c.host_config.get("LogConfig") or {}).get("Type") == "none":
            raise StrataError("configured logging driver does not support reading")
        tail = _tail_lines(args.tail)

        def running() -> bool:
            cur = store.by_id(c.id)
            return cur is not None and lc.reconcile(store, cur).running

        for entry in read_entries(log_path(store.root, c.id), tail=tail, follow=args.follow,
                                  still_running=running):
            where = window(entry.time)
            if where < 0:
                continue
            if where > 0:
                break
            out = ctx.err if entry.stream == "stderr" else ctx.out
            out.write(entry_line(entry, timestamps=args.timestamps, details=args.details))
            if args.follow:
                out.flush()
    return 0


def _cmd_exec(args: argparse.Namespace, ctx: Context) -> int:
    from strata.container import lifecycle as lc
    from strata.container.execution import ExecDetached, ExecRequest, exec_env, exec_events, run_exec
    from strata.container.records import container_dir
    from strata.errors import RuntimeFailure

    name, command = args.container, list(args.command)
    extra_env = exec_env(list(args.env_file), list(args.env))
    if args.interactive and args.tty and not args.detach and _not_a_tty(ctx):
        return 1
    with _store(ctx) as store:
        c = lc.reconcile(store, store.get(name))
        if c.state == "paused":
            raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
        if c.state != "running":
            raise Conflict(f"Container {c.id} is not running")
        runtime = lc.runtime_for(store.root, c)
        from strata.cli.containerio import exec_detach_keys

        keys = exec_detach_keys(args.detach_keys)
        done = exec_events(store.root, c, command)
        try:
            req = ExecRequest(
                command, env=extra_env(c.config, args.tty), cwd=args.workdir or c.config.get("WorkingDir") or None,
                user=_exec_user(store, c, args.user), tty=args.tty, interactive=args.interactive,
                detach=args.detach, privileged=args.privileged, detach_keys=keys,
            )
        except StrataError as e:
            return _exec_failed(ctx, args, e)
    ctx.close()
    ctx.out.flush()
    try:
        code = run_exec(runtime, c.id, container_dir(store.root, c.id), req, on_exit=done)
    except RuntimeFailure as e:
        return _exec_failed(ctx, args, e)
    except ExecDetached as e:  # Docker's CLI: the hijacked stream's error, as it is
        print(e, file=ctx.err)
        return 1
    return code  # exec_die: recorded by run_exec once the process ended (-d, -t: by its watcher)


def _exec_failed(ctx: Context, args: argparse.Namespace, e: StrataError) -> int:
    """A process exec could not start: Docker's daemon writes why into the exec's output stream (exit
    126); with ``-d`` nothing is attached and the CLI reports it as an error (exit 1)."""
    if e.exit_code != 126:
        raise e
    if args.detach:
        e.exit_code = 1
        raise e
    ctx.out.write(f"{e}\r\n")
    ctx.out.flush()
    return 126


def _exec_user(store: ContainerStore, c: Container, user: str | None) -> RuntimeUser | None:
    from strata.container.records import container_dir
    from strata.container.rootfs import Rootfs
    from strata.container.spec import resolve_user

    wanted = user if user is not None else str(c.config.get("User") or "")
    if not wanted:
        return None
    try:
        return resolve_user(Rootfs(container_dir(store.root, c.id), c.driver).path, wanted)
    except StrataError as e:
        e.exit_code = 126  # docker exec: the command could not be started
        raise


# --- ps / inspect / prune ----------------------------------------------------------------------


def _filter(ctx: Context, store: ContainerStore, items: list[str], keys: frozenset[str]) -> Callable[[Container], bool]:
    from strata.container.filters import matcher, parse_filters
    from strata.errors import ContainerNotFound

    filters = parse_filters(items, keys)

    def resolve(ref: str) -> Container:
        try:
            return store.get(ref)
        except ContainerNotFound:
            raise StrataError(f"no such container {ref}") from None

    def ancestor(c: Container, ref: str) -> bool:
        if ref in (c.image_name, c.image_id) or c.image_id.removeprefix("sha256:").startswith(ref.removeprefix(
                "sha256:")):
            return True
        try:
            wanted = str(ctx.engine().resolve_image(ref))
        except StrataError:
            return False
        return wanted == c.image_id

    return matcher(filters, resolve, ancestor if "ancestor" in filters else None)


def _rw_size(store: ContainerStore, c: Container) -> int:
    from strata.container.changes import rw_size
    from strata.container.records import container_dir

    return rw_size(container_dir(store.root, c.id), c.driver)


def _image_size(ctx: Context, image_id: str) -> int:
    from strata.digest import Digest

    try:
        return int(ctx.engine().summary(Digest.parse(image_id)).size)
    except (StrataError, OSError, ValueError, KeyError):
        return 0


def _status(c: Container) -> str:
    from strata.cli.format import container_status

    status = container_status(
        running=c.running, paused=c.state == "paused", dead=c.state == "dead", restarting=c.state == "restarting",
        started_at=c.started_at or None, finished_at=c.finished_at or None, exit_code=c.exit_code,
    )
    if c.health and c.state == "running":  # Docker's "Up 3 seconds (healthy)"
        health = str(c.health.get("Status") or "")
        status += " (health: starting)" if health == "starting" else f" ({health})" if health else ""
    return status


def _ps_fields(c: Container, trunc: bool, image: str | None = None) -> dict[str, Any]:
    """A row of ``ps`` as Docker's ContainerContext: its fields, and ``Label`` (a method with an argument)."""
    from strata.cli.format import short_id, time_ago, truncate
    from strata.container.inspect import list_command

    command = list_command(c)
    labels = dict(c.config.get("Labels") or {})
    mounts = [str(m.get("Name") or m.get("Source") or "") for m in c.mounts if m.get("_flag") != "--tmpfs"]
    return {
        "ID": short_id(c.id) if trunc else c.id,
        "Image": image or c.image_name,
        "Command": jsonfast.quote(truncate(command, 20) if trunc else command),
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(c.created)),
        "RunningFor": time_ago(c.created),
        "Status": _status(c),
        "State": c.state,
        "Ports": _ports_column(c),
        "Names": c.name,
        "Labels": ",".join(f"{k}={v}" for k, v in labels.items()),
        "Label": lambda name: str(labels.get(name, "")),
        "Mounts": ",".join(m[:12] if trunc else m for m in mounts),
        "LocalVolumes": str(sum(1 for m in c.mounts if m.get("Driver") == "local")),
        "Networks": ",".join(sorted(c.networks)),
    }


def _image_column(ctx: Context, c: Container, trunc: bool) -> str:
    """Docker's IMAGE: the name the container was created from while it still names that image, else
    the image's ID (short unless ``--no-trunc``)."""
    from strata.cli.format import short_id

    if c.image_name in (c.image_id, c.image_id.removeprefix("sha256:")) or _still_named(ctx, c):
        current = c.image_id
    else:
        try:
            current = str(ctx.engine().resolve_image(c.image_name))
        except StrataError:
            current = ""
    if current == c.image_id:
        return c.image_name
    return short_id(c.image_id) if trunc else c.image_id


def _still_named(ctx: Context, c: Container) -> bool:
    from strata.store.tagread import full_name, names_of

    full = full_name(c.image_name)
    names = names_of(ctx.store_dir(), c.image_id) if full is not None else None
    return names is not None and full in names


def _ports_column(c: Container) -> str:
    if not c.running or not any(ep.get("IPAddress") for ep in c.networks.values()):
        return ""  # Docker's come from a live endpoint (none: not on host/none networks, not stopped)
    from strata.container.network.ports import Mapping, displayable_ports

    return displayable_ports(dict(c.config.get("ExposedPorts") or {}), [Mapping.from_json(p) for p in c.ports])


def _cmd_port(args: argparse.Namespace, ctx: Context) -> int:
    from strata.container import lifecycle as lc
    from strata.container.network.ports import Mapping, port_lines

    with _store(ctx) as store:
        c = lc.reconcile(store, store.get(args.container))
        mappings = [Mapping.from_json(p) for p in c.ports] if c.running else []
        for line in port_lines(mappings, args.port or None, args.container):
            print(line, file=ctx.out)
    return 0


_PS_HEADERS = {
    "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED", "Status": "STATUS", "State": "STATE", "Ports": "PORTS", "Names": "NAMES",
    "Labels": "LABELS", "Size": "SIZE", "Mounts": "MOUNTS", "LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS",
    # Docker's SubHeaderContext.Label: the key's last dotted part, - and _ as spaces
    "Label": lambda name: name.split(".")[-1].replace("-", " ").replace("_", " "),
}


def _reconcile(store: ContainerStore, c: Container) -> Container | None:
    from strata.container import lifecycle as lc  # the runtime and network code, only when needed
    from strata.errors import ContainerNotFound

    try:
        return lc.reconcile(store, c)
    except ContainerNotFound:  # removed meanwhile (a killed build's watchdog, an rm): not listed, as Docker's
        return None


def _cmd_ps(args: argparse.Namespace, ctx: Context) -> int:
    from strata.cli.format import human_size, render_table, short_id
    from strata.container.filters import PS_KEYS
    from strata.container.records import settled

    if args.format:
        _check_ps_format(args.format)
    with _records(ctx) as store:
        wanted = _filter(ctx, store, args.filter, PS_KEYS)
        listed = [c if settled(store.root_dir, c) else _reconcile(store, c) for c in store.all()]
        containers = [c for c in listed if c is not None]
        # Docker: -l is -n 1 unless -n is given; a status filter and a limit above 0 include stopped
        # containers; -n 0 or below is no limit at all (the CLI's default is -1)
        limit = -1 if args.last is None else args.last
        limit = 1 if args.latest and limit == -1 else limit
        show_all = args.all or any(f.startswith("status=") for f in args.filter) or limit > 0
        containers = [c for c in containers if (show_all or c.running) and wanted(c)]
        if limit > 0:
            containers = containers[:limit]
        if args.quiet and args.format in (None, "", "table"):  # a --format of its own wins over -q
            for c in containers:
                print(short_id(c.id) if not args.no_trunc else c.id, file=ctx.out)
            return 0
        linked: dict[str, list[str]] = {}  # a child's names under its parents' links (--no-trunc shows them)
        if args.no_trunc:
            from strata.container.links import link_names

            linked = link_names(store.all())
        rows = []
        # Docker's CLI computes sizes when the template uses .Size (as {{json .}} does)
        sized = args.size or bool(args.format and ("Size" in args.format or "json" in args.format))
        for c in containers:
            f = _ps_fields(c, not args.no_trunc, _image_column(ctx, c, not args.no_trunc))
            if c.name in linked:
                f["Names"] = ",".join(sorted([c.name, *linked[c.name]]))
            if sized:  # Docker: "<rw> (virtual <image + rw>)"
                rw = _rw_size(store, c)
                virtual = rw + _image_size(ctx, c.image_id)
                f["Size"] = f"{human_size(rw)} (virtual {human_size(virtual)})" if virtual else human_size(rw)
            rows.append(f)
    if args.format:
        from strata.cli.output import write_format

        write_format(ctx, args.format, rows, _PS_HEADERS, "*formatter.ContainerContext")
        return 0
    headers = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    keys = ["ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"]
    if args.size:
        headers.append("SIZE")
        keys.append("Size")
    ctx.out.write(render_table(headers, [[f[k] for k in keys] for f in rows]))
    return 0


def _check_ps_format(fmt: str) -> None:
    """Docker's ps runs ``--format`` once on an empty ContainerContext before listing: a template that
    cannot parse or names no field of it fails even with no container to show."""
    from strata.gotemplate import Struct, Template, TemplateError

    text = fmt.removeprefix("table").strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    if fmt == "json":
        text = "{{json .}}"
    try:
        template = Template(text)
    except TemplateError as e:
        raise StrataError(f"failed to parse template: {e}") from None
    empty: dict[str, Any] = {k: "" for k in (*_PS_HEADERS, "Size")}
    empty["Label"] = lambda name: ""
    try:
        template.execute(Struct("*formatter.ContainerContext", empty))
    except TemplateError as e:
        raise StrataError(f"failed to execute template: {e}") from None


def _cmd_inspect(args: argparse.Namespace, ctx: Context) -> int:
    """``container inspect``: Docker's CLI runs its generic inspect on containers only (a template parse
    error before any lookup, exit 64; ``missingkey=error``; an empty line when nothing rendered; the
    errors in order after what was printed)."""
    from strata.cli import output
    from strata.container import lifecycle as lc
    from strata.container.inspect import inspect_container

    form = output.inspect_format(args.format) if args.format else None
    docs: list[dict[str, Any]] = []
    errors: list[str] = []
    with _store(ctx) as store:
        for ref in args.containers:
            try:
                c = lc.reconcile(store, store.get(ref))
            except StrataError as e:
                errors.append(f"Error: {e}")
                continue
            doc = inspect_container(store.root, c)
            doc = _sized(ctx, store, c, doc) if args.size else doc
            try:
                if form is not None:
                    ctx.out.write(output.render_inspect(form, doc) + "\n")
                docs.append(doc)
            except StrataError as e:
                errors.append(str(e))
    if form is None:
        ctx.out.write(output.go_json_indent(docs) + "\n")
    elif not docs:
        ctx.out.write("\n")
    if errors:
        raise StrataError("\n".join(errors).removeprefix("Error: "))  # main prints the first "Error: "
    return 0


def _sized(ctx: Context, store: ContainerStore, c: Container, doc: dict[str, Any]) -> dict[str, Any]:
    """The inspect document with Docker's ``-s`` sizes (``SizeRootFs``: the image and the changes)."""
    from strata.container.inspect import with_sizes

    rw = _rw_size(store, c)
    return with_sizes(doc, rw, rw + _image_size(ctx, c.image_id))


def sized_inspect(ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
    """``inspect -s`` of a container's document found by the generic ``inspect``."""
    with _store(ctx) as store:
        return _sized(ctx, store, store.get(doc["Id"]), doc)


def _cmd_prune(args: argparse.Namespace, ctx: Context) -> int:
    from strata.cli.format import human_size
    from strata.container import lifecycle as lc
    from strata.container.filters import PRUNE_KEYS

    deleted: list[str] = []
    reclaimed = 0
    if not args.force:  # the CLI asks first; the daemon checks the filters only when asked to prune
        ctx.out.write(
            "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] "
        )
        ctx.out.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            print("Total reclaimed space: 0B", file=ctx.out)  # Docker prints it when declined too
            return 0
    with _store(ctx) as store:
        wanted = _filter(ctx, store, args.filter, PRUNE_KEYS)
        for c in store.all():
            c = lc.reconcile(store, c)
            if c.running or not wanted(c):
                continue
            size = _rw_size(store, c)
            try:
                lc.remove(store, c)
            except StrataError as e:
                print(f"Error: {e}", file=ctx.err)
                continue
            reclaimed += size
            deleted.append(c.id)
        from strata.events import record

        record(store.root, "container", "prune", "", {"reclaimed": str(reclaimed)})  # Docker's daemon logs it
    if deleted:
        print("Deleted Containers:", file=ctx.out)
        for cid in deleted:
            print(cid, file=ctx.out)
        print("", file=ctx.out)
    print(f"Total reclaimed space: {human_size(reclaimed, 4)}", file=ctx.out)  # units.HumanSize
    return 0


# --- diff / commit / export --------------------------------------------------------------------


def _cmd_diff(args: argparse.Namespace, ctx: Context) -> int:
    from strata.container.changes import changes
    from strata.container.records import container_dir

    with _store(ctx) as store:
        c = store.get(args.container)
        for kind, path in changes(container_dir(store.root, c.id), c.driver):
            print(f"{kind} {path}", file=ctx.out)
    return 0


def _cmd_commit(args: argparse.Namespace, ctx: Context) -> int:
    from strata.container.commit import commit
    from strata.container.records import ContainerStore

    engine = ctx.engine()
    with ContainerStore(engine.root) as store:
        c = store.get(args.container)
        image_id = commit(
            engine, store, c, repo_tag=args.repository, author=args.author or "", message=args.message or "",
            changes=list(args.change), pause=args.pause,
        )
    _commit_events(engine.root, c, str(image_id), args)
    print(str(image_id), file=ctx.out)
    return 0


def _commit_events(root: Path, c: Container, image_id: str, args: argparse.Namespace) -> None:
    """Docker's: the new tag's image event, then the container's ``commit`` (comment, imageID, imageRef)."""
    from strata.events import record_container, record_image
    from strata.reference import parse_normalized_named

    ref = parse_normalized_named(args.repository).familiar_string() if args.repository else ""
    if ref:
        if ":" not in ref.rpartition("/")[2] and "@" not in ref:
            ref += ":latest"
        record_image(root, "tag", image_id, ref)
    record_container(root, "commit", c.id, c.name, c.image_name, c.config.get("Labels"),
                     {"comment": args.message or "", "imageID": image_id, "imageRef": ref})


def _cmd_export(args: argparse.Namespace, ctx: Context) -> int:
    from strata.container.copypaths import validate_output_path
    from strata.container.export import export

    if args.output:  # the CLI checks it before it asks for the container
        try:
            validate_output_path(args.output)
        except StrataError as e:
            raise StrataError(f"failed to export container: {e}") from None
    with _store(ctx) as store:
        c = store.get(args.container)
        if args.output:
            export(store, c, args.output)  # as given: Docker's rename error names it so
            return 0
        if os.isatty(1):
            raise StrataError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
        ctx.out.flush()
        export(store, c, None, out_fd=1)
    return 0


# --- registration ------------------------------------------------------------------------------


def _containers_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def _add(sub: Any, name: str, handler: Handler, help_text: str, **kw: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text, **kw)
    p.set_defaults(func=handler)
    return p


def _register_commands(sub: Any, *, in_group: bool) -> None:
    import argparse  # here: ps runs without it

    from strata.cli.resources import add_spec_flags

    p = _add(sub, "run", _cmd_run, "Run a command in a new container", add_help=False)
    p.add_argument("--help", action="help")
    p.add_argument("-d", "--detach", action="store_true", help="run in background and print the container ID")
    p.add_argument("--detach-keys", help="Override the key sequence for detaching a container")
    p.add_argument("-a", "--attach", action="append", default=[], help="Attach to STDIN, STDOUT or STDERR")
    p.add_argument("--sig-proxy", type=bool_flag, nargs="?", const=True, default=True,
                   help="Proxy received signals to the process (default true)")
    _add_create_flags(p)
    add_spec_flags(p)  # cgroups, devices, drivers, links (strata.cli.resources)

    p = _add(sub, "create", _cmd_create, "Create a new container", add_help=False)
    p.add_argument("--help", action="help")
    _add_create_flags(p)
    add_spec_flags(p, create=True)

    p = _add(sub, "start", _cmd_start, "Start one or more stopped containers")
    p.add_argument("-a", "--attach", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("--detach-keys", help="Override the key sequence for detaching a container")
    p.add_argument("--all", action="store_true",
                   help="start the containers whose restart policy is always or unless-stopped (at boot)")
    p.add_argument("containers", nargs="*", metavar="CONTAINER")

    from strata.cli.resources import register_commands as register_resource_commands

    register_resource_commands(sub, _add)  # stats, update

    for name, handler, text in (
        ("stop", _cmd_stop, "Stop one or more running containers"),
        ("restart", _cmd_restart, "Restart one or more containers"),
    ):
        p = _add(sub, name, handler, text)
        p.add_argument("-t", "--time", type=int, help="seconds to wait before killing it (default 10, or the container's --stop-timeout)")
        _containers_arg(p)

    p = _add(sub, "kill", _cmd_kill, "Kill one or more running containers")
    p.add_argument("-s", "--signal", default="KILL")
    _containers_arg(p)

    for name, handler, text in (
        ("pause", _cmd_pause, "Pause all processes within one or more containers"),
        ("unpause", _cmd_unpause, "Unpause all processes within one or more containers"),
        ("wait", _cmd_wait, "Block until one or more containers stop, then print their exit codes"),
    ):
        _containers_arg(_add(sub, name, handler, text))

    p = _add(sub, "rm", _cmd_rm, "Remove one or more containers")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-v", "--volumes", action="store_true")
    p.add_argument("-l", "--link", action="store_true")
    _containers_arg(p)

    p = _add(sub, "logs", _cmd_logs, "Fetch the logs of a container")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-n", "--tail", default="all")
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("--since", help="show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m)")
    p.add_argument("--until", help="show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m)")
    p.add_argument("--details", action="store_true", help="show extra details provided to logs")
    p.add_argument("container")

    p = _add(sub, "exec", _cmd_exec, "Run a command in a running container")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("--detach-keys", help="Override the key sequence for detaching a container")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("--env-file", action="append", default=[])
    p.add_argument("--privileged", action="store_true")
    p.add_argument("-w", "--workdir")
    p.add_argument("-u", "--user")
    p.add_argument("container")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]")  # cli.pflag: needs COMMAND

    _register_inspection(sub, in_group=in_group)


def _register_inspection(sub: Any, *, in_group: bool) -> None:
    """ps, port, diff, commit, export."""
    ps_name = "ls" if in_group else "ps"
    p = _add(sub, ps_name, _cmd_ps, "List containers", aliases=["ps", "list"] if in_group else [])
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-s", "--size", action="store_true")
    p.add_argument("-n", "--last", type=int)
    p.add_argument("-l", "--latest", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format")

    p = _add(sub, "port", _cmd_port, "List port mappings or a specific mapping for the container")
    p.add_argument("container")
    p.add_argument("port", nargs="?")

    p = _add(sub, "diff", _cmd_diff, "Inspect changes to files or directories on a container's filesystem")
    p.add_argument("container")

    p = _add(sub, "commit", _cmd_commit, "Create a new image from a container's changes")
    p.add_argument("-a", "--author")
    p.add_argument("-m", "--message")
    p.add_argument("-c", "--change", action="append", default=[])
    p.add_argument("-p", "--pause", type=bool_flag, nargs="?", const=True, default=True)
    p.add_argument("container")
    p.add_argument("repository", nargs="?")

    p = _add(sub, "export", _cmd_export, "Export a container's filesystem as a tar archive")
    p.add_argument("-o", "--output")
    p.add_argument("container")


def register(subparsers: Any) -> None:
    _register_commands(subparsers, in_group=False)
    group = subparsers.add_parser("container", help="Manage containers", description="Manage containers")
    gsub = group.add_subparsers(dest="container_command", metavar="COMMAND", parser_class=type(group))
    _register_commands(gsub, in_group=True)
    from strata.cli.containerio import register_in_group  # cp, top, rename, attach

    register_in_group(gsub)
    p = _add(gsub, "inspect", _cmd_inspect, "Display detailed information on one or more containers")
    p.add_argument("-f", "--format")
    p.add_argument("-s", "--size", action="store_true")
    _containers_arg(p)
    p = _add(gsub, "prune", _cmd_prune, "Remove all stopped containers")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append", default=[])
