"""``stats`` and ``update``: a container's usage as Docker's table, its limits changed while it runs."""

from __future__ import annotations

import argparse

from strata.errors import StrataError

TYPE_CHECKING = False  # typing's costs ps a listing's start-up (cli.containers registers this group)

if TYPE_CHECKING:
    from typing import Any

    from strata.cli.main import Context
    from strata.container.records import Container, ContainerStore

__all__ = [
    "STATS_HEADERS",
    "add_cfs_flags",
    "add_spec_flags",
    "attach_config",
    "cfs_fields",
    "check_volume_driver",
    "register_commands",
    "remove_links",
    "spec_fields",
    "tuning_fields",
]

STATS_HEADERS = {"ID": "CONTAINER ID", "Name": "NAME", "Container": "CONTAINER", "CPUPerc": "CPU %",
                 "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
                 "PIDs": "PIDS"}
_DEFAULT_FORMAT = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
_CLEAR = "\033[2J\033[H"


def _store(ctx: Context) -> ContainerStore:
    from strata.container.records import ContainerStore

    return ContainerStore(ctx.engine().root)


def _targets(store: ContainerStore, args: argparse.Namespace) -> list[tuple[str, Container]]:
    """(the name shown as ``.Container``, the record): the ones named (each must exist), else the
    running ones (all with ``-a``)."""
    from strata.container.lifecycle import reconcile

    if args.containers:
        return [(ref, reconcile(store, store.get(ref))) for ref in args.containers]
    every = [reconcile(store, c) for c in store.all()]
    return [(c.id[:12], c) for c in every if args.all or c.running]


def _rows(store: ContainerStore, args: argparse.Namespace) -> list[dict[str, Any]]:
    from strata.container.lifecycle import reconcile
    from strata.container.stats import sample_all, stats_row

    targets = _targets(store, args)
    readings = sample_all([(c.pid if c.state == "running" else 0, str(c.host_config.get("NetworkMode") or ""), c.id)
                           for _, c in targets])
    rows = []
    for (given, c), (prev, cur) in zip(targets, readings, strict=True):
        c = reconcile(store, c)
        rows.append({"Container": given, "ID": c.id if args.no_trunc else c.id[:12], "Name": c.name,
                     **stats_row(prev, cur)})
    return rows


def _cmd_stats(args: argparse.Namespace, ctx: Context) -> int:
    from strata.cli.output import write_format

    fmt = args.format or _DEFAULT_FORMAT
    if fmt == "table":
        fmt = _DEFAULT_FORMAT
    with _store(ctx) as store:
        while True:
            rows = _rows(store, args)
            if not args.no_stream:
                ctx.out.write(_CLEAR)
            write_format(ctx, fmt, rows, STATS_HEADERS, struct_name="*container.statsContext")
            ctx.out.flush()
            if args.no_stream:
                return 0


_CFS_FLAGS = (("CpuPeriod", "--cpu-period", "cpu_period", "limit CPU CFS (Completely Fair Scheduler) period"),
              ("CpuQuota", "--cpu-quota", "cpu_quota", "limit CPU CFS (Completely Fair Scheduler) quota"),
              ("CpuRealtimePeriod", "--cpu-rt-period", "cpu_rt_period", "limit CPU real-time period in microseconds"),
              ("CpuRealtimeRuntime", "--cpu-rt-runtime", "cpu_rt_runtime",
               "limit CPU real-time runtime in microseconds"),
              ("KernelMemory", "--kernel-memory", "kernel_memory", "kernel memory limit"),
              ("MemoryReservation", "--memory-reservation", "memory_reservation", "memory soft limit"))


def add_cfs_flags(p: argparse.ArgumentParser, *, run: bool = False) -> None:
    """The CFS, real-time, memory-reservation and cpuset-mems flags ``run``/``create``/``update`` share
    (``run``: and ``--memory-swappiness``/``--oom-score-adj``, which ``update`` has not)."""
    for _, flag, _, text in _CFS_FLAGS:
        p.add_argument(flag, help=text)
    p.add_argument("--cpuset-mems", help="MEMs in which to allow execution (0-3, 0,1)")
    if run:
        for flag, text in (("--blkio-weight-device", "block IO weight (relative device weight)"),
                           ("--device-read-bps", "limit read rate (bytes per second) from a device"),
                           ("--device-read-iops", "limit read rate (IO per second) from a device"),
                           ("--device-write-bps", "limit write rate (bytes per second) to a device"),
                           ("--device-write-iops", "limit write rate (IO per second) to a device")):
            p.add_argument(flag, action="append", default=[], help=text)
        p.add_argument("--memory-swappiness", default="-1", help="tune container memory swappiness (0 to 100)")
        p.add_argument("--oom-score-adj", default="0", help="tune host's OOM preferences (-1000 to 1000)")


def add_spec_flags(p: argparse.ArgumentParser, *, create: bool = False) -> None:
    """``--cgroup-parent``, ``--cgroupns``, ``--device-cgroup-rule``, ``--gpus``, ``--isolation``, ``--storage-opt``,
    ``--volume-driver``, ``--disable-content-trust``, ``--link``, ``--ip6``, ``--link-local-ip`` (and
    ``create -a``: ``run`` has its own)."""
    from strata.cli.flagread import bool_flag

    p.add_argument("--cgroup-parent", default="", help="optional parent cgroup for the container")
    p.add_argument("--cgroupns", default="", help="cgroup namespace to use (host|private)")
    p.add_argument("--device-cgroup-rule", action="append", default=[], help="add a rule to the cgroup allowed devices list")
    p.add_argument("--gpus", action="append", default=[], help="GPU devices to add to the container")
    p.add_argument("--isolation", default="", help="container isolation technology")
    p.add_argument("--storage-opt", action="append", default=[], help="storage driver options for the container")
    p.add_argument("--volume-driver", default="", help="optional volume driver for the container")
    p.add_argument("--disable-content-trust", type=bool_flag, nargs="?", const=True, default=True,
                   help="skip image verification (default true)")
    p.add_argument("--link", action="append", default=[], help="add link to another container")
    p.add_argument("--ip6", default="", help="IPv6 address (e.g., 2001:db8::33)")
    p.add_argument("--link-local-ip", action="append", default=[], help="container IPv4/IPv6 link-local addresses")
    if create:
        p.add_argument("-a", "--attach", action="append", default=[], help="attach to STDIN, STDOUT or STDERR")


def attach_config(args: argparse.Namespace) -> dict[str, bool]:
    """``-a STREAM``: Docker's CLI attaches the streams named (stdin with ``-i`` too), checked as it does."""
    streams = set()
    for value in args.attach:
        if value.lower() not in ("stdin", "stdout", "stderr"):
            cmd = "run" if hasattr(args, "detach") else "create"
            raise StrataError(f'invalid argument "{value}" for "-a, --attach" flag: valid streams are STDIN, '
                              f"STDOUT and STDERR\nSee 'strata {cmd} --help'.", exit_code=125)
        streams.add(value.lower())
    return {"AttachStdin": "stdin" in streams or args.interactive, "AttachStdout": "stdout" in streams,
            "AttachStderr": "stderr" in streams}


def spec_fields(args: argparse.Namespace, cmd: str, error: Any) -> dict[str, Any]:
    """Those flags' HostConfig fields (Docker's CLI and daemon checks); ``error(flag, value, text)``."""
    from strata.container.links import parse_link
    from strata.container.specflags import parse_device_cgroup_rule, parse_gpus, spec_flags_host_config

    for link in args.link:
        try:
            parse_link(link)
        except ValueError as e:
            raise error("--link", link, str(e)) from None
    gpus: list[dict[str, Any]] = []
    for flag, values, parse in (("--device-cgroup-rule", args.device_cgroup_rule, parse_device_cgroup_rule),
                                ("--gpus", args.gpus, parse_gpus)):
        for value in values:
            try:
                parsed = parse(value)
            except ValueError as e:
                raise error(flag, value, str(e)) from None
            if isinstance(parsed, dict):
                gpus.append(parsed)
    if not args.disable_content_trust:  # Docker's CLI asks the notary server first
        raise StrataError("error contacting notary server: content trust is not supported by strata")
    try:
        return spec_flags_host_config(cgroup_parent=args.cgroup_parent, cgroupns=args.cgroupns,
                                      device_cgroup_rules=list(args.device_cgroup_rule), gpus=gpus,
                                      isolation=args.isolation, storage_opt=list(args.storage_opt),
                                      volume_driver=args.volume_driver)
    except StrataError as e:
        if e.exit_code == 125:  # the CLI's own checks: with its usage line
            raise StrataError(f"{e}.\nSee 'strata {cmd} --help'.", exit_code=125) from None
        raise


def check_volume_driver(ctx: Context, args: argparse.Namespace, specs: list[Any]) -> None:
    """``--volume-driver`` other than ``local`` with a volume to make: the daemon's plugin lookup fails
    NotFound, and Docker 20.10's CLI takes any NotFound from create for a missing image: it says so and
    pulls, then fails on the volume again."""
    from strata.container.specflags import check_volume_driver as check

    if args.volume_driver and args.mount:  # Docker's CLI warns through logrus (its text format on stderr)
        import time

        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        print(f'time="{stamp}" level=warning msg="`--volume-driver` is ignored for volumes specified via `--mount`. '
              'Use `--mount type=volume,volume-driver=...` instead."', file=ctx.err)
    named = any(getattr(s, "type", "") == "volume" and getattr(s, "from_flag", "") == "-v" for s in specs)
    try:
        check(args.volume_driver, named)
    except StrataError:
        from strata.api import pull
        from strata.cli.distribution import ProgressPrinter
        from strata.reference import parse_docker_ref

        print(f"Unable to find image '{parse_docker_ref(args.image).familiar_string()}' locally", file=ctx.err)
        pull(args.image, progress=ProgressPrinter(ctx.err), engine=ctx.engine())
        raise


def record_extras(store: ContainerStore, c: Container, attached: dict[str, bool] | None,
                  links: list[tuple[str, str]], addresses: dict[str, Any], given: list[str] | None = None) -> Container:
    """What ``create`` records once the container has its name: ``-a``'s Config fields, ``HostConfig.Links``
    (``/child:/parent/alias``), the endpoint's ``IPAMConfig`` with ``--ip6``/``--link-local-ip``; on a user
    network the ``--link`` values ``given`` as the endpoint's ``Links`` (Docker's CLI puts them there);
    ``--network/--ipc/--pid container:NAME`` as ``container:<ID>``."""
    from strata.container.links import record_links

    if attached is not None:
        c = store.update(c.id, config={**c.config, **attached})
    if links:
        c = store.update(c.id, host_config={**c.host_config, "Links": record_links(links, c.name)})
    if addresses and c.networks:
        name = next(iter(c.networks))
        ipam = {**(c.networks[name].get("IPAMConfig") or {}), **addresses}
        c = store.update(c.id, networks={**c.networks, name: {**c.networks[name], "IPAMConfig": ipam}})
    joined = {key: f"container:{store.get(mode.partition(':')[2]).id}" for key in ("NetworkMode", "IpcMode", "PidMode")
              if (mode := str(c.host_config.get(key) or "")).startswith("container:")}
    if joined:  # the daemon keeps the container it joins by its ID (a rename cannot lose it)
        c = store.update(c.id, host_config={**c.host_config, **joined})
    if given and not links and c.networks and next(iter(c.networks)) != "bridge":
        name = next(iter(c.networks))
        c = store.update(c.id, networks={**c.networks, name: {**c.networks[name], "Links": list(given)}})
    return c


def remove_links(ctx: Context, store: ContainerStore, names: list[str], force: bool) -> int:
    """``rm --link NAME...``: each link removed from its parent (the name printed), Docker's errors."""
    from strata.container.links import remove_link
    from strata.errors import NotFound

    failed = False
    for name in names:
        try:
            remove_link(store, name)
            print(name, file=ctx.out, flush=True)
        except StrataError as e:
            failed = failed or not (force and isinstance(e, NotFound))
            print(f"Error: {e}", file=ctx.err, flush=True)
    return 1 if failed else 0


def tuning_fields(args: argparse.Namespace, cmd: str, error: Any) -> dict[str, Any]:
    """``MemorySwappiness`` (None for -1, Docker's CLI range check) and ``OomScoreAdj`` (the daemon
    checks its range); ``error(flag, value, text)`` for a value that is no number."""
    from strata.container.resources import parse_int64

    values = {}
    for flag, value in (("--memory-swappiness", args.memory_swappiness), ("--oom-score-adj", args.oom_score_adj)):
        try:
            values[flag] = parse_int64(value)
        except ValueError as e:
            raise error(flag, value, str(e)) from None
    out = _block_io_fields(args, error)
    swappiness = values["--memory-swappiness"]
    if swappiness != -1 and not 0 <= swappiness <= 100:
        raise StrataError(f"invalid value: {swappiness}. Valid memory swappiness range is 0-100.\n"
                          f"See 'strata {cmd} --help'.", exit_code=125)
    return {**out, "MemorySwappiness": None if swappiness == -1 else swappiness,
            "OomScoreAdj": values["--oom-score-adj"]}


def _block_io_fields(args: argparse.Namespace, error: Any) -> dict[str, Any]:
    """``--blkio-weight-device`` and the ``--device-{read,write}-{bps,iops}`` throttles as HostConfig."""
    from strata.container.resources import parse_throttle_device, parse_weight_device

    out: dict[str, Any] = {}
    for field, flag, attr, iops in (("BlkioWeightDevice", "--blkio-weight-device", "blkio_weight_device", None),
                                    ("BlkioDeviceReadBps", "--device-read-bps", "device_read_bps", False),
                                    ("BlkioDeviceWriteBps", "--device-write-bps", "device_write_bps", False),
                                    ("BlkioDeviceReadIOps", "--device-read-iops", "device_read_iops", True),
                                    ("BlkioDeviceWriteIOps", "--device-write-iops", "device_write_iops", True)):
        items = []
        for value in getattr(args, attr):
            try:
                items.append(parse_weight_device(value) if iops is None else parse_throttle_device(value, iops))
            except ValueError as e:
                raise error(flag, value, str(e)) from None
        out[field] = items if iops is None else items or None
    return out


def cfs_fields(args: argparse.Namespace, error: Any) -> dict[str, Any]:
    """Those flags' HostConfig fields (only the ones given); ``error(flag, value, text)`` makes the
    exception for a bad value (Docker's CLI words: pflag's int64 and MemBytes parsers)."""
    from strata.container.resources import parse_int64, parse_ram

    out: dict[str, Any] = {}
    for field, flag, attr, _ in _CFS_FLAGS:
        value = getattr(args, attr)
        if value is None:
            continue
        try:
            out[field] = parse_ram(value) if field in ("KernelMemory", "MemoryReservation") else parse_int64(value)
        except ValueError as e:
            raise error(flag, value, str(e)) from None
    if args.cpuset_mems is not None:
        out["CpusetMems"] = args.cpuset_mems
    return out


def _update_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The HostConfig fields the flags give (Docker's CLI errors for bad values)."""
    from strata.container.resources import parse_cpus, parse_int64, parse_ram, parse_uint16

    changes: dict[str, Any] = {}
    for key, flag, value, parse in (
        ("Memory", "-m, --memory", args.memory, parse_ram),
        ("MemorySwap", "--memory-swap", args.memory_swap, lambda v: -1 if v == "-1" else parse_ram(v)),
        ("NanoCpus", "--cpus", args.cpus, parse_cpus),
        ("BlkioWeight", "--blkio-weight", args.blkio_weight, parse_uint16),
        ("CpuShares", "-c, --cpu-shares", args.cpu_shares, parse_int64),
        ("PidsLimit", "--pids-limit", args.pids_limit, parse_int64),
    ):
        if value is not None:
            try:
                changes[key] = parse(value)
            except ValueError as e:
                raise StrataError(f'invalid argument "{value}" for "{flag}" flag: {e}\nSee \'strata update --help\'.',
                                  exit_code=125) from None
    changes.update(cfs_fields(args, lambda flag, value, e: StrataError(
        f'invalid argument "{value}" for "{flag}" flag: {e}\nSee \'strata update --help\'.', exit_code=125)))
    if args.cpuset_cpus is not None:
        from strata.container.resources import check_cpuset

        check_cpuset(args.cpuset_cpus, exit_code=1)
        changes["CpusetCpus"] = args.cpuset_cpus
    return changes


def _update_one(store: ContainerStore, c: Container, changes: dict[str, Any], restart: dict[str, Any] | None,
                warnings: list[str]) -> None:
    """Docker's UpdateContainer on one container: checked, applied live (``runtime update``), recorded."""
    from strata.container.lifecycle import reconcile, runtime_for
    from strata.container.resources import merge_update, runc_update_args
    from strata.rootless import is_rootless

    hc, warned = merge_update(c.id, c.host_config, changes)
    if is_rootless():  # the limits a rootless run would drop, with its warnings
        from strata.rootless.cgroups import discarded_limits, undelegated

        warned += discarded_limits(changes)
        dropped = undelegated(changes)
        changes = {k: v for k, v in changes.items() if k not in dropped}
        hc = {**hc, **{k: c.host_config.get(k) for k in dropped}}
    warnings.extend(w for w in warned if w not in warnings)
    if restart is not None:
        if c.host_config.get("AutoRemove") and restart["Name"] != "no":
            raise StrataError(f"Cannot update container {c.id}: Restart policy cannot be updated because "
                              "AutoRemove is enabled for the container")  # the daemon's errCannotUpdate
        hc["RestartPolicy"] = restart
    c = reconcile(store, c)
    if changes and c.state in ("running", "paused"):
        try:
            runtime_for(store.root, c).update(c.id, runc_update_args(hc))
        except StrataError as e:
            raise StrataError(f"Cannot update container {c.id}: {e}: unknown") from None
    store.update(c.id, host_config=hc)


def _cmd_update(args: argparse.Namespace, ctx: Context) -> int:
    from strata.container.lifecycle import parse_restart_policy

    changes = _update_changes(args)
    if not changes and args.restart is None:
        raise StrataError("you must provide one or more flags when using this command")
    failed = False
    warnings: list[str] = []
    with _store(ctx) as store:
        for ref in args.containers:
            try:
                restart = parse_restart_policy(args.restart) if args.restart is not None else None
                _update_one(store, store.get(ref), changes, restart, warnings)
                print(ref, file=ctx.out, flush=True)
            except StrataError as e:
                failed = True
                print(f"Error: {e}", file=ctx.err, flush=True)
    if warnings:
        print("\n".join(warnings), file=ctx.out)
    return 1 if failed else 0


def register_commands(sub: Any, add: Any) -> None:
    """``stats`` and ``update`` on ``sub`` (``add``: the container group's parser maker)."""
    p = add(sub, "stats", _cmd_stats, "Display a live stream of container(s) resource usage statistics")
    p.add_argument("-a", "--all", action="store_true", help="show all containers (default shows just running)")
    p.add_argument("--format", help="pretty-print stats using a Go template")
    p.add_argument("--no-stream", action="store_true", help="disable streaming stats and only pull the first result")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    p.add_argument("containers", nargs="*", metavar="CONTAINER")

    p = add(sub, "update", _cmd_update, "Update configuration of one or more containers")
    p.add_argument("--blkio-weight", help="block IO (relative weight), between 10 and 1000, or 0 to disable")
    p.add_argument("-c", "--cpu-shares", help="CPU shares (relative weight)")
    p.add_argument("--cpus", help="number of CPUs")
    p.add_argument("--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)")
    p.add_argument("-m", "--memory", help="memory limit")
    p.add_argument("--memory-swap", help="swap limit equal to memory plus swap: '-1' to enable unlimited swap")
    p.add_argument("--pids-limit", help="tune container pids limit (set -1 for unlimited)")
    add_cfs_flags(p)
    p.add_argument("--restart", help="restart policy to apply when a container exits")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
