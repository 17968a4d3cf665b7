"""Docker's legacy container links (``--link name[:alias]``, ``rm --link``) on the default bridge: the
CLI's and daemon's checks, ``HostConfig.Links`` (``/child:/parent/alias``), and at start the parent's
``ALIAS_PORT_…``/``ALIAS_NAME``/``ALIAS_ENV_…`` variables and its ``/etc/hosts`` line for each child.
On a user-defined network Docker takes a link without checking it (the endpoint's ``Links``, an alias its
embedded DNS answers for the linking container): strata writes each alias whose target runs there into the
linking container's ``/etc/hosts`` at start. A child's (re)start rewrites its running parents' lines with its
new address, as Docker's updateParentHosts."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from strata.errors import Conflict, NotFound, StrataError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from strata.container.records import Container, ContainerStore

__all__ = ["apply_links", "check_links", "connect_links", "link_env", "link_names", "parse_link", "record_links",
           "remove_link"]

_SKIPPED_ENV = ("HOME", "PATH")


def parse_link(text: str) -> tuple[str, str]:
    """Docker's ParseLink: ``name`` or ``name:alias`` (``/name:/parent/alias`` as HostConfig keeps it)."""
    if not text:
        raise ValueError("empty string specified for links")
    parts = text.split(":")
    if len(parts) > 2:
        raise ValueError(f"bad format for links: {text}")
    if len(parts) == 1:
        return text, text
    if parts[0].startswith("/"):
        return parts[0][1:], posixpath.basename(parts[1])
    return parts[0], parts[1]


def _legacy(mode: str) -> bool:
    return mode in ("default", "bridge")


def check_links(links: list[str], mode: str, get: Callable[[str], Container]) -> list[tuple[str, str]]:
    """(child name, alias) of each link after Docker's checks: the CLI's for the network mode (exit 125),
    then on the default bridge the daemon's (the child exists, is not on the host's network)."""
    if not links:
        return []
    if mode in ("host", "none") or mode.startswith("container:"):
        raise StrataError("links are only supported for user-defined networks", exit_code=125)
    pairs = [parse_link(text) for text in links]
    if not _legacy(mode):
        return []
    out = []
    for name, alias in pairs:
        try:
            child = get(name)
        except NotFound as e:
            raise NotFound(f"could not get container for {name}: {e}") from None
        if str(child.host_config.get("NetworkMode") or "") == "host":
            raise Conflict("conflicting options: host type networking can't be used with links. This would "
                           "result in undefined behavior")
        out.append((child.name, alias))
    return out


def record_links(pairs: list[tuple[str, str]], parent: str) -> list[str] | None:
    """``HostConfig.Links`` as the daemon keeps them: ``/child:/parent/alias``."""
    return [f"/{child}:/{parent}/{alias}" for child, alias in pairs] or None


def _port_key(port: str) -> tuple[int, bool, str]:
    number, _, proto = port.partition("/")
    return int(number.split("-")[0]), (proto or "tcp").lower() != "tcp", proto


def _port_env(prefix: str, ports: list[str], ip: str) -> list[str]:
    """Docker's Link.ToEnv for the ports: the first one, each run of more than two contiguous ports as
    ``_START``/``_END``, then every port on its own."""
    ports = sorted(ports, key=_port_key)
    if not ports:
        return []
    num, _, proto = ports[0].partition("/")
    env = [f"{prefix}_PORT={proto}://{ip}:{num}"]
    i = 0
    while i < len(ports):
        j, value = i, _port_key(ports[i])[0]
        while j + 1 < len(ports) and _port_key(ports[j + 1])[0] <= value + 1:  # Docker's nextContiguous
            j, value = j + 1, value + 1
        if j > i + 1:
            num, _, proto = ports[i].partition("/")
            end_num, _, end_proto = ports[j].partition("/")
            key, end = f"{prefix}_PORT_{num}_{proto.upper()}", f"{prefix}_PORT_{num}_{end_proto.upper()}"
            env += [f"{key}_START={proto}://{ip}:{num}", f"{key}_ADDR={ip}", f"{key}_PROTO={proto}",
                    f"{key}_PORT_START={num}", f"{end}_END={end_proto}://{ip}:{end_num}", f"{end}_PORT_END={end_num}"]
            i = j + 1
        else:
            i += 1
    for port in ports:
        num, _, proto = port.partition("/")
        key = f"{prefix}_PORT_{num}_{proto.upper()}"
        env += [f"{key}={proto}://{ip}:{num}", f"{key}_ADDR={ip}", f"{key}_PORT={num}", f"{key}_PROTO={proto}"]
    return env


def link_env(link_name: str, ip: str, child: Container) -> list[str]:
    """Docker's Link.ToEnv: ports, ``_NAME``, the child's environment (not HOME, PATH)."""
    prefix = posixpath.basename(link_name).upper().replace("-", "_")
    env = _port_env(prefix, list(child.config.get("ExposedPorts") or {}), ip)
    env.append(f"{prefix}_NAME={link_name}")
    for item in child.config.get("Env") or []:
        key, eq, value = str(item).partition("=")
        if eq and key not in _SKIPPED_ENV:
            env.append(f"{prefix}_ENV_{key}={value}")
    return env


def _children(store: ContainerStore, c: Container) -> list[tuple[str, str, Container]]:
    """(link name ``/parent/alias``, alias, running child) of each link; a child since removed is gone
    from Docker's link graph too."""
    out = []
    for text in c.host_config.get("Links") or []:
        child_name, _, link_name = text.partition(":")
        try:
            child = store.get(child_name.lstrip("/"))
        except NotFound:
            continue
        if child.state not in ("running", "paused"):
            raise StrataError(f"Cannot link to a non running container: /{child.name} AS {link_name}")
        if "bridge" not in child.networks:  # Docker's isLinkable
            raise StrataError(f"Cannot link to /{child.name}, as it does not belong to the default network")
        out.append((link_name, posixpath.basename(link_name), child))
    return out


def apply_links(spec: dict[str, Any], store: ContainerStore, c: Container, hosts: Path) -> None:
    """At start, on the default bridge: each child's variables go after PATH/HOSTNAME/TERM (the
    container's own Env still wins) and its line into ``/etc/hosts`` before the container's own. On a
    user network each link's alias is a line for the container it names there. And the running parents
    linked to this container get its new address in their ``/etc/hosts`` (Docker's updateParentHosts)."""
    _update_parents_hosts(store, c)
    if not _legacy(str(c.host_config.get("NetworkMode") or "default")):
        user_lines = [f"{ip}\t{alias}\n" for alias, ip in _user_links(store, c)]
        if user_lines:
            _insert_hosts_lines(hosts, user_lines, bool(c.networks))
        return
    if not c.host_config.get("Links"):
        return
    env: list[str] = []
    lines: list[str] = []
    for link_name, alias, child in _children(store, c):
        ip = str((child.networks.get("bridge") or {}).get("IPAddress") or "")
        env += link_env(link_name, ip, child)
        names = f"{alias} {child.config.get('Hostname') or ''}" + (f" {child.name}" if alias != child.name else "")
        if ip:
            lines.append(f"{ip}\t{names}\n")
    from strata.container.spec import process_env

    own = [e for e in c.config.get("Env") or [] if "=" in e]
    spec["process"]["env"] = process_env({**c.config, "Env": [*env, *own]}, bool(c.config.get("Tty")))
    if lines:
        _insert_hosts_lines(hosts, lines, bool(c.networks))


def connect_links(store: ContainerStore, c: Container, net: str) -> None:
    """``network connect --link`` of a running container: the lines of the new endpoint's links, as its
    start writes them (in place: the file is bind-mounted), and the running parents' lines for it there."""
    lines = "".join(f"{ip}\t{alias}\n" for alias, ip in _user_links(store, c, net))
    if lines:
        _rewrite_in_place(_container_dir_of(store, c) / "hosts", re.compile(rb"(?!)"), b"", lines.encode())
    _update_parents_hosts(store, c)


def _user_links(store: ContainerStore, c: Container, only: str | None = None) -> list[tuple[str, str]]:
    """(alias, address) of the endpoint links (``--link target:alias`` on a user network) whose target --
    a container's name, ID or network alias there -- is running on that network. Docker's embedded DNS
    answers these for the linking container alone; strata's resolver has no per-container names, so they
    are lines of its ``/etc/hosts``."""
    out: list[tuple[str, str]] = []
    if not any(ep.get("Links") for net, ep in c.networks.items() if only in (None, net)):
        return out  # no endpoint link: no other record is read
    running = [o for o in store.all() if o.id != c.id and o.state in ("running", "paused")]
    for net, ep in c.networks.items():
        for text in ep.get("Links") or [] if only in (None, net) else []:
            try:
                target, alias = parse_link(str(text))
            except ValueError:
                continue
            ip = next((str(o.networks[net].get("IPAddress") or "") for o in running
                       if net in o.networks and _names(o, net, target)), "")
            if ip and alias != target:  # its own name: the network's DNS answers it already
                out.append((alias, ip))
    return out


def _names(o: Container, net: str, target: str) -> bool:
    aliases = [str(a) for a in o.networks[net].get("Aliases") or []]
    return target in (o.name, *aliases) or (len(target) >= 12 and o.id.startswith(target))


_ANY_LINK = '"Links":["'  # a non-empty Links list (legacy or endpoint) in a record's compact JSON


def _update_parents_hosts(store: ContainerStore, child: Container) -> None:
    """The running parents' ``/etc/hosts`` lines for ``child`` take its current address, as Docker's
    etchosts.Update rewrites them (``<ip>\t<names>``), in place: the file is bind-mounted in them."""
    for parent in store.containing(_ANY_LINK):  # only records with a link: a start reads no others
        if parent.id == child.id or parent.state not in ("running", "paused"):
            continue
        for names, ip in _parent_entries(parent, child):
            pattern = re.compile(rb"(\S*)(\t" + re.escape(names.encode()) + rb")(\s|\.)")
            # a user network's link whose target was not running at the parent's start: its line now
            missing = f"{ip}\t{names}\n".encode() if " " not in names else None
            _rewrite_in_place(_container_dir_of(store, parent) / "hosts", pattern, ip.encode() + rb"\2\3", missing)


def _parent_entries(parent: Container, child: Container) -> list[tuple[str, str]]:
    """(the names of ``parent``'s hosts line for ``child``, child's address now), for its legacy links
    and its user networks' endpoint links."""
    out = []
    if _legacy(str(parent.host_config.get("NetworkMode") or "default")):
        ip = str((child.networks.get("bridge") or {}).get("IPAddress") or "")
        for text in parent.host_config.get("Links") or []:
            child_name, _, link_name = text.partition(":")
            if child_name.lstrip("/") == child.name and ip:
                alias = posixpath.basename(link_name)
                names = f"{alias} {child.config.get('Hostname') or ''}" + (f" {child.name}" if alias != child.name
                                                                           else "")
                out.append((names, ip))
        return out
    for net, ep in parent.networks.items():
        ip = str((child.networks.get(net) or {}).get("IPAddress") or "")
        for text in ep.get("Links") or []:
            try:
                target, alias = parse_link(str(text))
            except ValueError:
                continue
            if ip and alias != target and _names(child, net, target):
                out.append((alias, ip))
    return out


def _container_dir_of(store: ContainerStore, c: Container) -> Path:
    from strata.container.records import container_dir

    return container_dir(store.root, c.id)


def _rewrite_in_place(path: Path, pattern: re.Pattern[bytes], replacement: bytes, missing: bytes | None) -> None:
    """``path`` (never followed if a link) with ``pattern`` replaced, in place (no match: the line
    ``missing``, when given, before the container's own last line); a missing file is left alone."""
    import os

    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    with os.fdopen(fd, "r+b") as f:
        data = f.read()
        new = pattern.sub(replacement, data)
        if not pattern.search(data) and missing is not None:
            lines = data.splitlines(keepends=True)
            new = b"".join([*lines[:-1], missing, *lines[-1:]])
        if new != data:
            f.seek(0)
            f.write(new)
            f.truncate()


def _insert_hosts_lines(hosts: Path, lines: list[str], own_last: bool) -> None:
    from strata.atomicfile import write_bytes_atomic

    current = hosts.read_text().splitlines(keepends=True)
    cut = len(current) - 1 if own_last and current else len(current)
    write_bytes_atomic(hosts, "".join([*current[:cut], *lines, *current[cut:]]).encode())


def link_names(containers: list[Container]) -> dict[str, list[str]]:
    """Each child's names under its parents' links (``parent/alias``), as ``ps --no-trunc`` lists them."""
    out: dict[str, list[str]] = {}
    for parent in containers:
        for text in parent.host_config.get("Links") or []:
            child, _, link_name = text.partition(":")
            out.setdefault(child.lstrip("/"), []).append(link_name.lstrip("/"))
    return out


def remove_link(store: ContainerStore, name: str) -> None:
    """``rm --link /parent/alias``: the daemon's rmLink (a link's name; a container's own is refused)."""
    full = name if name.startswith("/") else "/" + name
    owner = next((o for o in store.all() for text in o.host_config.get("Links") or []
                  if text.partition(":")[2] == full), None) if full.rpartition("/")[0] else None
    if owner is None:
        store.get(name)  # Docker's No such container
        raise Conflict("Conflict, cannot remove the default link name of the container")
    links = [t for t in owner.host_config.get("Links") or [] if t.partition(":")[2] != full]
    store.update(owner.id, host_config={**owner.host_config, "Links": links or None})
