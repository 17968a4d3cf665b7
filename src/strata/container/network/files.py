"""``/etc/hosts`` and ``/etc/resolv.conf`` of a container, as Docker (libnetwork) writes them."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["DEFAULT_HOSTS", "DEFAULT_NAMESERVERS", "host_resolv", "hosts_file", "resolv_conf"]

DEFAULT_HOSTS = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)
DEFAULT_NAMESERVERS = ["8.8.8.8", "8.8.4.4"]  # what Docker falls back to without a usable host resolver

_LOCAL_NS = re.compile(r"(?m)^\s*nameserver\s*((127\.\d+\.\d+\.\d+)|(::1))\s*\n?")
_IPV6_NS = re.compile(r"(?m)^\s*nameserver\s*[0-9a-fA-F:]*:[0-9a-fA-F:]*\s*\n?")
_NS = re.compile(r"(?m)^\s*nameserver\s*(\S+)")


def hosts_file(ip: str, hostname: str, domainname: str, extra: list[str], ip6: str = "") -> str:
    """Defaults, ``--add-host`` entries, then the container's own address lines (when it has them: IPv4,
    then IPv6)."""
    out = [DEFAULT_HOSTS]
    for item in extra:
        host, _, addr = item.partition(":")
        out.append(f"{addr}\t{host}\n")
    if ip:
        fqdn = f"{hostname}.{domainname}" if domainname else hostname
        short = fqdn.split(".", 1)[0]
        names = f"{fqdn} {short}" if short != fqdn else fqdn
        out.extend(f"{addr}\t{names}\n" for addr in (ip, ip6) if addr)
    return "".join(out)


def host_resolv() -> str:
    """The host's resolver config; systemd-resolved's stub (127.0.0.53) is skipped for its upstream file."""
    try:
        text = Path("/etc/resolv.conf").read_text()
    except OSError:
        return ""
    servers = _NS.findall(text)
    if servers == ["127.0.0.53"]:
        try:
            return Path("/run/systemd/resolve/resolv.conf").read_text()
        except OSError:
            pass
    return text


def _lines(text: str, key: str) -> list[str]:
    out: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == key:
            out.extend(fields[1:])
    return out


def _build(servers: list[str], search: list[str], options: list[str]) -> str:
    out = ""
    if search and " ".join(search).strip() != ".":
        out += "search " + " ".join(search) + "\n"
    out += "".join(f"nameserver {s}\n" for s in servers)
    if options and " ".join(options).strip():
        out += "options " + " ".join(options) + "\n"
    return out


def resolv_conf(
    host: str, dns: list[str], search: list[str], options: list[str], embedded: str | None = None
) -> str:
    """Docker's resolv.conf: the host's without local (and IPv6) resolvers, falling back to Google's;
    or built from ``--dns``/``--dns-search``/``--dns-option``; on a network with name resolution,
    its resolver (``embedded``) with ``ndots:0``, the others being its upstreams."""
    filtered = _IPV6_NS.sub("", _LOCAL_NS.sub("", host))
    if embedded is not None:
        opts = options or _lines(host, "options")
        if not any(o.startswith("ndots:") for o in opts):
            opts = [*opts, "ndots:0"]
        return _build([embedded], search or _lines(host, "search"), opts)
    if dns or search or options:
        servers = dns or _NS.findall(filtered) or DEFAULT_NAMESERVERS
        return _build(servers, search or _lines(host, "search"), options or _lines(host, "options"))
    if not _NS.findall(filtered):
        filtered = filtered + ("" if filtered.endswith("\n") or not filtered else "\n")
        filtered += "".join(f"nameserver {s}\n" for s in DEFAULT_NAMESERVERS)
    return filtered
