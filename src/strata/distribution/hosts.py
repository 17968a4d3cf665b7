"""Where a registry named in a reference really lives, and how to talk to it.

``docker.io`` (and its old names) is served by ``registry-1.docker.io``. Registries are reached over HTTPS,
verifying certificates against the system roots plus any CA found in ``/etc/docker/certs.d/<host>/*.crt``
or ``/etc/containers/certs.d/<host>/*.crt``; a ``<name>.cert``/``<name>.key`` pair there is presented as a
client certificate. Registries listed as insecure (Docker's ``insecure-registries``) are tried over HTTPS
without verification first and then over plain HTTP, as Docker does. ``localhost``, ``127.0.0.0/8`` and
``::1`` are tried over *verified* HTTPS first and fall back to plain HTTP only when the server does not speak
TLS at all: a loopback registry presenting a certificate strata cannot verify is refused (``x509: …``)
unless its CA is in a certs.d directory or it is listed as insecure -- stricter than Docker, which skips
verification on loopback. Docker Hub mirrors (``registry-mirrors``) come before Docker Hub itself for
pulls; a mirror that fails is passed over for the next one, then Docker Hub.

Settings come from a ``HostsConfig``; ``HostsConfig.load()`` reads strata's config file (``$STRATA_CONFIG``,
else ``/etc/strata/config.json``) whose keys are Docker's ``daemon.json`` ones, plus the environment
variables ``STRATA_INSECURE_REGISTRIES`` and ``STRATA_REGISTRY_MIRRORS`` (comma separated).
"""

from __future__ import annotations

import ipaddress
import json
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_CERTS_DIRS",
    "DOCKER_HUB",
    "DOCKER_HUB_HOST",
    "Endpoint",
    "HostsConfig",
    "is_loopback",
    "normalize_host",
    "resolve_endpoints",
    "ssl_context_for",
]

DOCKER_HUB = "docker.io"
DOCKER_HUB_HOST = "registry-1.docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
DEFAULT_CERTS_DIRS = (Path("/etc/docker/certs.d"), Path("/etc/containers/certs.d"))
_DEFAULT_CONFIG = Path("/etc/strata/config.json")


def normalize_host(host: str) -> str:
    """The canonical registry name: Docker Hub's aliases become ``docker.io``; case is folded."""
    h = host.strip().lower()
    if "://" in h:
        h = urlsplit(h).netloc
    h = h.rstrip("/")
    return DOCKER_HUB if h in _HUB_ALIASES else h


def _hostname(host: str) -> str:
    """``host:port`` → ``host`` (handles ``[::1]:5000``)."""
    if host.startswith("["):
        return host[1 : host.index("]")]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def is_loopback(host: str) -> bool:
    name = _hostname(host)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _split_list(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


@dataclass(frozen=True)
class HostsConfig:
    """Registry connection settings (Docker's daemon.json names in ``load``)."""

    insecure_registries: tuple[str, ...] = ()
    mirrors: tuple[str, ...] = ()
    certs_dirs: tuple[Path, ...] = DEFAULT_CERTS_DIRS

    @classmethod
    def load(cls, path: Path | None = None) -> HostsConfig:
        env_path = os.environ.get("STRATA_CONFIG")
        cfg_path = path or (Path(env_path) if env_path else _DEFAULT_CONFIG)
        data: dict[str, object] = {}
        try:
            loaded = json.loads(cfg_path.read_text())
            if isinstance(loaded, dict):
                data = loaded
        except (OSError, ValueError):
            pass
        insecure = [str(x) for x in _as_list(data.get("insecure-registries"))]
        insecure += _split_list(os.environ.get("STRATA_INSECURE_REGISTRIES"))
        mirrors = [str(x) for x in _as_list(data.get("registry-mirrors"))]
        mirrors += _split_list(os.environ.get("STRATA_REGISTRY_MIRRORS"))
        certs = [Path(str(x)) for x in _as_list(data.get("certs-dirs"))]
        certs += [Path(p) for p in _split_list(os.environ.get("STRATA_CERTS_DIRS"))]
        return cls(tuple(insecure), tuple(mirrors), tuple(certs) or DEFAULT_CERTS_DIRS)

    def is_insecure(self, host: str) -> bool:
        """Listed in ``insecure-registries`` (by name, ``host:port`` or CIDR): TLS unverified, then HTTP."""
        name = _hostname(host)
        for entry in self.insecure_registries:
            entry = normalize_host(entry)
            if entry in (host, name):
                return True
            if "/" in entry:
                try:
                    net = ipaddress.ip_network(entry, strict=False)
                    if ipaddress.ip_address(name) in net:
                        return True
                except ValueError:
                    continue
        return False


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


@dataclass(frozen=True)
class Endpoint:
    """One way of reaching a registry: ``scheme://netloc`` with its TLS settings."""

    registry: str  # the name references use ("docker.io", "localhost:5000")
    netloc: str  # what we connect to ("registry-1.docker.io", "localhost:5000")
    scheme: str = "https"
    verify: bool = True
    mirror: bool = False
    path_prefix: str = ""
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False, repr=False)

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.path_prefix}"


def _cert_dirs(host: str, config: HostsConfig) -> list[Path]:
    return [d / host for d in config.certs_dirs if (d / host).is_dir()]


def ssl_context_for(host: str, config: HostsConfig, *, verify: bool = True) -> ssl.SSLContext:
    """A client TLS context: system roots + certs.d CAs, client certificate pairs, optional no-verify."""
    ctx = ssl.create_default_context()
    for d in _cert_dirs(host, config):
        for f in sorted(d.iterdir()):
            if f.suffix == ".crt":
                ctx.load_verify_locations(cafile=str(f))
            elif f.suffix == ".cert":
                key = f.with_suffix(".key")
                if key.exists():
                    ctx.load_cert_chain(str(f), str(key))
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _mirror_endpoint(url: str, config: HostsConfig) -> Endpoint:
    parts = urlsplit(url if "://" in url else f"https://{url}")
    netloc = parts.netloc
    scheme = parts.scheme or "https"
    verify = scheme == "https" and not config.is_insecure(netloc)
    ctx = ssl_context_for(netloc, config, verify=verify) if scheme == "https" else None
    return Endpoint(DOCKER_HUB, netloc, scheme, verify, True, parts.path.rstrip("/"), ctx)


def resolve_endpoints(registry: str, config: HostsConfig | None = None, *, for_push: bool = False) -> list[Endpoint]:
    """The endpoints to try, in order, for ``registry`` (a reference's domain)."""
    cfg = config or HostsConfig.load()
    name = normalize_host(registry)
    out: list[Endpoint] = []
    if name == DOCKER_HUB:
        if not for_push:
            out += [_mirror_endpoint(m, cfg) for m in cfg.mirrors]
        netloc = DOCKER_HUB_HOST
    else:
        netloc = name
    insecure = cfg.is_insecure(netloc)
    loopback = is_loopback(netloc)
    verify = not insecure
    ctx = ssl_context_for(netloc, cfg, verify=verify)
    out.append(Endpoint(name, netloc, "https", verify, False, "", ctx))
    if insecure or loopback:  # (a certificate that fails verification never gets here: see the client's probe)
        out.append(Endpoint(name, netloc, "http", False))
    return out
