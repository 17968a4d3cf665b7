"""System commands as Docker 20.10's CLI shows them: ``info`` and ``version`` here; ``events``
(``strata.cli.events``) and ``system prune`` (``strata.cli.sysprune``) registered here and loaded when
run; the ``system`` group (``system df`` itself lives with the image commands)."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from strata.errors import StrataError

if TYPE_CHECKING:
    from pathlib import Path

    from strata.cli.main import Context

__all__ = ["register"]


# --- version -------------------------------------------------------------------------------------


def _platform() -> tuple[str, str]:
    machine = os.uname().machine
    return "linux", {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _tool_version(argv: list[str]) -> tuple[str, str]:
    """``(version, commit)`` from a tool's ``--version`` (runc: ``runc version X`` / ``commit: Y``;
    tini: ``tini version X - git.Y``); empty when it does not run."""
    import subprocess

    try:
        text = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return "", ""
    version = commit = ""
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and words[1] == "version":
            version = words[2]
            commit = words[4].removeprefix("git.") if len(words) >= 5 and words[3] == "-" else commit
        elif line.startswith("commit:"):
            commit = line.partition(":")[2].strip()
    return version, commit


def _version_doc() -> dict[str, Any]:
    """Docker's ``types.Version`` (client and server) with strata's facts: one binary is both."""
    import platform
    import shutil

    from strata import __version__

    os_name, arch = _platform()
    go = f"python{platform.python_version()}"
    client = {"Platform": {"Name": ""}, "Version": __version__, "ApiVersion": "1.41", "DefaultAPIVersion": "1.41",
              "GitCommit": "", "GoVersion": go, "Os": os_name, "Arch": arch, "BuildTime": "",
              "Context": "default", "Experimental": True}
    engine = {"Name": "Engine", "Version": __version__, "Details": {
        "ApiVersion": "1.41", "Arch": arch, "BuildTime": "", "Experimental": "false", "GitCommit": "",
        "GoVersion": go, "KernelVersion": os.uname().release, "MinAPIVersion": "1.12", "Os": os_name}}
    components = [engine]
    from strata.container.runtime import find_runtime

    try:
        runtime = find_runtime(None)
    except StrataError:
        runtime = ""
    if runtime:
        version, commit = _tool_version([shutil.which(runtime) or runtime, "--version"])
        components.append({"Name": runtime, "Version": version, "Details": {"GitCommit": commit}})
    tini = shutil.which("tini-static") or shutil.which("docker-init")
    if tini:
        version, commit = _tool_version([tini, "--version"])
        components.append({"Name": "docker-init", "Version": version, "Details": {"GitCommit": commit}})
    server = {"Platform": {"Name": ""}, "Components": components, "Version": __version__, "ApiVersion": "1.41",
              "MinAPIVersion": "1.12", "GitCommit": "", "GoVersion": go, "Os": os_name, "Arch": arch,
              "KernelVersion": os.uname().release, "BuildTime": ""}
    return {"Client": client, "Server": server}


def _aligned(label: str, value: Any) -> str:
    """One ``label:<TAB>value`` line through Docker's tabwriter (minwidth 20, padding 1)."""
    return f"{label:<20}{value}" if len(label) < 20 else f"{label} {value}"


def _version_text(doc: dict[str, Any]) -> str:
    c, s = doc["Client"], doc["Server"]
    lines = ["Client:" + (f" {c['Platform']['Name']}" if c["Platform"]["Name"] else "")]
    for label, value in (("Version", c["Version"]), ("API version", c["ApiVersion"]), ("Go version", c["GoVersion"]),
                         ("Git commit", c["GitCommit"]), ("Built", c["BuildTime"]),
                         ("OS/Arch", f"{c['Os']}/{c['Arch']}"), ("Context", c["Context"]),
                         ("Experimental", str(c["Experimental"]).lower())):
        lines.append(_aligned(f" {label}:", value))
    lines += ["", "Server:" + (f" {s['Platform']['Name']}" if s["Platform"]["Name"] else "")]
    for comp in s["Components"]:
        lines.append(f" {comp['Name']}:")
        d = comp["Details"]
        if comp["Name"] == "Engine":
            rows = [("Version", comp["Version"]),
                    ("API version", f"{d['ApiVersion']} (minimum version {d['MinAPIVersion']})"),
                    ("Go version", d["GoVersion"]), ("Git commit", d["GitCommit"]), ("Built", d["BuildTime"]),
                    ("OS/Arch", f"{d['Os']}/{d['Arch']}"), ("Experimental", d["Experimental"])]
        else:
            rows = [("Version", comp["Version"]), *sorted(d.items())]
        lines += [_aligned(f"  {label}:", value) for label, value in rows]
    return "\n".join(lines) + "\n"


def _render(fmt: str, data: Any, name: str = "", out: Any = None) -> str:
    """``--format`` of info/version as Docker's CLI: a parse error exits 64, an execution error 1 after
    what the template wrote and a newline went to ``out``; the template is called ``name`` in Go's messages."""
    from strata.gotemplate import Template, TemplateError

    def named(e: TemplateError) -> str:
        text = str(e)
        return text.replace("template: :", f"template: {name}:", 1).replace('executing ""', f'executing "{name}"', 1)

    try:
        template = Template(fmt)
    except TemplateError as e:
        raise StrataError(f"template parsing error: {named(e)}", exit_code=64) from None
    partial: list[str] = []
    try:
        return template.execute(data, partial=partial)
    except TemplateError as e:
        if out is not None:
            out.write("".join(partial) + "\n")  # Docker's CLI writes its newline anyway
            out.flush()
        raise StrataError(named(e)) from None


def _version_struct(doc: dict[str, Any]) -> Any:
    """Docker's ``versionInfo`` for a template: Go's field names (``.Client.APIVersion``), JSON as the API's."""
    from strata.gotemplate import Struct

    def fields(part: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
        return {names.get(k, k): v for k, v in part.items()}

    renames = {"ApiVersion": "APIVersion"}
    c, srv = doc["Client"], doc["Server"]
    client = Struct("system.clientVersion", {**fields(c, renames),
                                             "Platform": Struct("struct { Name string }", c["Platform"],
                                                                marshal=c["Platform"])}, marshal=c)
    components = [Struct("types.ComponentVersion", comp, marshal=comp) for comp in srv["Components"]]
    server = Struct("*types.Version", {**fields(srv, renames), "Components": components,
                                      "Platform": Struct("struct { Name string }", srv["Platform"],
                                                         marshal=srv["Platform"])}, marshal=srv)
    return Struct("system.versionInfo", {"Client": client, "Server": server}, marshal=doc)


def _cmd_version(args: argparse.Namespace, ctx: Context) -> int:
    doc = _version_doc()
    if args.format:
        print(_render(args.format, _version_struct(doc), "version", ctx.out), file=ctx.out)
        return 0
    ctx.out.write(_version_text(doc))
    return 0


# --- info ----------------------------------------------------------------------------------------


def _backing_fs(path: Path) -> str:
    """The filesystem ``path`` lives on, named as Docker's ``fsutils`` names it (ext4 is ``extfs``)."""
    best, fstype = "", "<unknown>"
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                mount_point = fields[4]
                kind = fields[fields.index("-") + 1]
                inside = str(path) == mount_point or str(path).startswith(mount_point.rstrip("/") + "/")
                if inside and len(mount_point) >= len(best):
                    best, fstype = mount_point, kind
    except (OSError, ValueError, IndexError):
        pass
    return {"ext2": "extfs", "ext3": "extfs", "ext4": "extfs", "overlay": "overlayfs"}.get(fstype, fstype)


def _os_release() -> tuple[str, str]:
    values: dict[str, str] = {}
    try:
        with open("/etc/os-release") as f:
            for line in f:
                key, _, value = line.strip().partition("=")
                values[key] = value.strip('"')
    except OSError:
        pass
    return values.get("PRETTY_NAME", "Linux"), values.get("VERSION_ID", "")


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _bytes_size(size: float) -> str:
    """go-units ``BytesSize``: binary units, ``%.4g`` (``23.54GiB``)."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
    i = 0
    while size >= 1024.0 and i < len(units) - 1:
        size /= 1024.0
        i += 1
    return "%.4g%s" % (size, units[i])  # noqa: UP031 - Go's %.4g


def _engine_id(root: Path) -> str:
    """A stable ID in Docker's shape (12 groups of 4 base32 characters), from the machine and the store."""
    import base64
    import hashlib

    try:
        machine = open("/etc/machine-id").read().strip()  # noqa: SIM115
    except OSError:
        machine = os.uname().nodename
    raw = base64.b32encode(hashlib.sha256(f"{machine}:{root}".encode()).digest()).decode()[:48]
    return ":".join(raw[i:i + 4] for i in range(0, 48, 4))


def _container_counts(root: Path) -> dict[str, int]:
    from strata.container.records import ContainerStore, settled

    counts = {"Containers": 0, "ContainersRunning": 0, "ContainersPaused": 0, "ContainersStopped": 0}
    with ContainerStore(root) as store:
        for c in store.all():
            if not settled(root, c):
                from strata.container.lifecycle import reconcile

                c = reconcile(store, c)
            counts["Containers"] += 1
            key = {"running": "ContainersRunning", "paused": "ContainersPaused"}.get(c.state, "ContainersStopped")
            if c.state == "restarting":
                key = "ContainersRunning"  # Docker counts a restarting container as running
            counts[key] += 1
    return counts


def _storage(root: Path, scratch: Path) -> tuple[str, list[list[str]]]:
    """The driver a new container's rootfs gets (``vfs`` when configured, else probed with mounts in
    ``scratch``: ``overlay2``, ``fuse-overlayfs`` or ``vfs``) and Docker's status lines for it."""
    import shutil

    from strata.container.rootfs import storage_driver
    from strata.container.runtime import config_value
    from strata.rootless.mode import in_user_namespace

    configured = config_value("storage-driver")
    wanted = os.environ.get("STRATA_STORAGE_DRIVER") or (configured if isinstance(configured, str) else "")
    if wanted == "vfs":
        shutil.rmtree(scratch, ignore_errors=True)
        return "vfs", []
    driver = storage_driver(scratch)
    if driver != "overlay2":
        return driver, []  # Docker's vfs and fuse-overlayfs drivers report no status lines
    userxattr = "true" if in_user_namespace() else "false"
    return driver, [["Backing Filesystem", _backing_fs(root)], ["Supports d_type", "true"],
                    ["Native Overlay Diff", "true"], ["userxattr", userxattr]]


def _registry_config() -> dict[str, Any]:
    """Docker's ``RegistryConfig`` from strata's config file: insecure registries (CIDRs, else names
    as their own index entries, loopback always), Docker Hub mirrors."""
    import ipaddress

    from strata.distribution.hosts import HostsConfig

    cfg = HostsConfig.load()
    cidrs: list[str] = []
    mirrors = [m.rstrip("/") + "/" if "://" in m else f"https://{m.rstrip('/')}/" for m in cfg.mirrors]
    indexes: dict[str, Any] = {"docker.io": {"Name": "docker.io", "Mirrors": mirrors, "Secure": True, "Official": True}}
    for entry in cfg.insecure_registries:
        try:
            net = str(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            indexes[entry] = {"Name": entry, "Mirrors": [], "Secure": False, "Official": False}
            continue
        if net not in cidrs:
            cidrs.append(net)
    if "127.0.0.0/8" not in cidrs:
        cidrs.append("127.0.0.0/8")  # Docker's: loopback is always insecure, listed last
    return {"AllowNondistributableArtifactsCIDRs": [], "AllowNondistributableArtifactsHostnames": [],
            "InsecureRegistryCIDRs": cidrs, "IndexConfigs": indexes, "Mirrors": mirrors}


def _runtimes() -> tuple[dict[str, Any], str]:
    import shutil

    from strata.container.runtime import RUNTIMES, config_value, find_runtime

    found: dict[str, Any] = {name: {"path": name} for name in RUNTIMES if shutil.which(name)}
    extra = config_value("runtimes")
    if isinstance(extra, dict):
        for name, spec in extra.items():
            if isinstance(spec, dict) and isinstance(spec.get("path"), str):
                found[name] = {"path": spec["path"]}
    try:
        default = find_runtime(None)
    except StrataError:
        default = ""
    return dict(sorted(found.items())), default


def _cgroup_version() -> str:
    return "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1"


def _info_doc(ctx: Context) -> dict[str, Any]:
    """Docker's ``types.Info`` with strata's facts, in the daemon's field order."""
    import shutil
    import socket

    from strata import __version__
    from strata.image.config import rfc3339_nano

    engine = ctx.engine()
    root = engine.root
    driver, status = _storage(root, engine.store.temp_dir("driver-"))
    runtimes, default_runtime = _runtimes()
    runtime_commit = _tool_version([shutil.which(default_runtime) or default_runtime, "--version"])[1] \
        if default_runtime else ""
    tini = shutil.which("tini-static") or shutil.which("docker-init")
    init_commit = _tool_version([tini, "--version"])[1] if tini else ""
    os_name, os_version = _os_release()
    forwarding = _read_flag("/proc/sys/net/ipv4/ip_forward")
    security = ["name=seccomp,profile=default"]
    from strata.rootless import is_rootless

    driver_cgroup, warnings = "cgroupfs", list[str]()
    if is_rootless():  # also as root of the user's rootless namespace
        security.append("name=rootless")
        from strata.rootless.cgroups import cgroup_driver

        driver_cgroup, warnings = cgroup_driver(_cgroup_version())
    if _cgroup_version() == "2":
        security.append("name=cgroupns")
    return {
        "ID": _engine_id(root), **_container_counts(root), "Images": len(engine.summaries()),
        "Driver": driver, "DriverStatus": status,
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Authorization": None,
                    "Log": ["json-file"]},
        **dict.fromkeys(("MemoryLimit", "SwapLimit", "KernelMemory", "KernelMemoryTCP", "CpuCfsPeriod",
                         "CpuCfsQuota", "CPUShares", "CPUSet", "PidsLimit"), True),
        "IPv4Forwarding": forwarding, "BridgeNfIptables": True, "BridgeNfIp6tables": True, "Debug": False,
        "NFd": len(os.listdir("/proc/self/fd")), "OomKillDisable": True, "NGoroutines": 1,
        "SystemTime": rfc3339_nano(), "LoggingDriver": "json-file", "CgroupDriver": driver_cgroup,
        "CgroupVersion": _cgroup_version(), "NEventsListener": 0, "KernelVersion": os.uname().release,
        "OperatingSystem": os_name, "OSVersion": os_version, "OSType": "linux", "Architecture": os.uname().machine,
        "IndexServerAddress": "https://index.docker.io/v1/", "RegistryConfig": _registry_config(),
        "NCPU": os.cpu_count() or 1, "MemTotal": _mem_total(), "GenericResources": None,
        "DockerRootDir": str(root), "HttpProxy": os.environ.get("HTTP_PROXY", os.environ.get("http_proxy", "")),
        "HttpsProxy": os.environ.get("HTTPS_PROXY", os.environ.get("https_proxy", "")),
        "NoProxy": os.environ.get("NO_PROXY", os.environ.get("no_proxy", "")), "Name": socket.gethostname(),
        "Labels": [], "ExperimentalBuild": False, "ServerVersion": __version__, "Runtimes": runtimes,
        "DefaultRuntime": default_runtime,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False, "Error": "",
                  "RemoteManagers": None},
        "LiveRestoreEnabled": False, "Isolation": "", "InitBinary": "docker-init",
        "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": {"ID": runtime_commit, "Expected": runtime_commit},
        "InitCommit": {"ID": init_commit, "Expected": init_commit}, "SecurityOptions": security, "Warnings": warnings or None,
        "ClientInfo": {"Debug": False, "Context": "default", "Plugins": [], "Warnings": None},
    }


def _read_flag(path: str) -> bool:
    try:
        with open(path) as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def _info_text(d: dict[str, Any]) -> str:
    """Docker 20.10's ``prettyPrintInfo`` layout."""
    out = ["Client:", " Context:    default", " Debug Mode: false", "", "Server:",
           f" Containers: {d['Containers']}", f"  Running: {d['ContainersRunning']}",
           f"  Paused: {d['ContainersPaused']}", f"  Stopped: {d['ContainersStopped']}", f" Images: {d['Images']}",
           f" Server Version: {d['ServerVersion']}", f" Storage Driver: {d['Driver']}"]
    out += [f"  {k}: {v}" for k, v in d["DriverStatus"]]
    out += [f" Logging Driver: {d['LoggingDriver']}", f" Cgroup Driver: {d['CgroupDriver']}",
            f" Cgroup Version: {d['CgroupVersion']}", " Plugins:",
            f"  Volume: {' '.join(d['Plugins']['Volume'])}", f"  Network: {' '.join(d['Plugins']['Network'])}",
            f"  Log: {' '.join(d['Plugins']['Log'])}", " Swarm: inactive",
            f" Runtimes: {' '.join(d['Runtimes'])}", f" Default Runtime: {d['DefaultRuntime']}",
            f" Init Binary: {d['InitBinary']}", f" containerd version: {d['ContainerdCommit']['ID']}",
            f" runc version: {d['RuncCommit']['ID']}", f" init version: {d['InitCommit']['ID']}",
            " Security Options:"]
    for opt in d["SecurityOptions"]:
        fields = dict(kv.partition("=")[::2] for kv in opt.split(","))
        out.append(f"  {fields.get('name', '')}")
        if fields.get("profile"):
            out.append(f"   Profile: {fields['profile']}")
    out += [f" Kernel Version: {d['KernelVersion']}", f" Operating System: {d['OperatingSystem']}",
            f" OSType: {d['OSType']}", f" Architecture: {d['Architecture']}", f" CPUs: {d['NCPU']}",
            f" Total Memory: {_bytes_size(d['MemTotal'])}", f" Name: {d['Name']}", f" ID: {d['ID']}",
            f" Docker Root Dir: {d['DockerRootDir']}", " Debug Mode: false"]
    for label, key in (("HTTP Proxy", "HttpProxy"), ("HTTPS Proxy", "HttpsProxy"), ("No Proxy", "NoProxy")):
        if d[key]:
            out.append(f" {label}: {d[key]}")
    out += [f" Registry: {d['IndexServerAddress']}", " Labels:", " Experimental: false"]
    reg = d["RegistryConfig"]
    insecure = [*(name for name, ic in reg["IndexConfigs"].items() if not ic["Secure"]), *reg["InsecureRegistryCIDRs"]]
    if insecure:
        out += [" Insecure Registries:", *(f"  {x}" for x in insecure)]
    if reg["Mirrors"]:
        out += [" Registry Mirrors:", *(f"  {x}" for x in reg["Mirrors"])]
    out += [" Live Restore Enabled: false", ""]
    return "\n".join(out) + "\n"


def _cmd_info(args: argparse.Namespace, ctx: Context) -> int:
    if args.format:
        from strata.gotemplate import Struct

        doc = _info_doc(ctx)
        print(_render(args.format, Struct("system.info", doc, marshal=doc), out=ctx.out), file=ctx.out)
        return 0
    doc = _info_doc(ctx)
    ctx.out.write(_info_text(doc))
    if doc["Warnings"]:  # the client's printServerWarnings
        ctx.out.flush()
        print("\n".join(doc["Warnings"]), file=ctx.err)
    return 0


# --- events and system prune (their own modules, loaded when run) -------------------------------


def _cmd_events(args: argparse.Namespace, ctx: Context) -> int:
    from strata.cli.events import cmd_events

    return cmd_events(args, ctx)


def _cmd_prune(args: argparse.Namespace, ctx: Context) -> int:
    from strata.cli.sysprune import cmd_prune

    return cmd_prune(args, ctx)


# --- registration --------------------------------------------------------------------------------


def _add(sub: Any, name: str, handler: Any, text: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=text, description=text)
    p.set_defaults(func=handler)
    return p


def _events_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--filter", action="append", default=[], help="Filter output based on conditions provided")
    p.add_argument("--format", help="Format the output using the given Go template")
    p.add_argument("--since", help="Show all events created since timestamp")
    p.add_argument("--until", help="Stream events until this timestamp")


def _register_in(sub: Any) -> None:
    p = _add(sub, "info", _cmd_info, "Display system-wide information")
    p.add_argument("-f", "--format", help="Format the output using the given Go template")
    _events_args(_add(sub, "events", _cmd_events, "Get real time events from the server"))


def register(sub: Any) -> None:
    _register_in(sub)
    p = _add(sub, "version", _cmd_version, "Show the Docker version information")
    p.add_argument("-f", "--format", help="Format the output using the given Go template")
    system = sub.add_parser("system", help="Manage Docker", description="Manage Docker")
    ssub = system.add_subparsers(dest="system_command", metavar="COMMAND", parser_class=type(system))
    _register_in(ssub)
    p = _add(ssub, "prune", _cmd_prune, "Remove unused data")
    p.add_argument("-a", "--all", action="store_true", help="Remove all unused images not just dangling ones")
    p.add_argument("--filter", action="append", default=[], help="Provide filter values (e.g. 'label=<key>=<value>')")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--volumes", action="store_true", help="Prune volumes")
    from strata.cli.images import register_df

    register_df(ssub)



