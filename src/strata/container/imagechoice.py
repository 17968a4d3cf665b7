"""``run``/``create``'s ``--platform`` and ``--pull``: the platform parsed and normalised as containerd's
``platforms.Parse`` does, a local image checked against it (Docker's "does not match the specified
platform"), and the pull policy (``missing``, the default; ``always``; ``never``)."""

from __future__ import annotations

import platform as host_platform
import re
from typing import Any

from strata.errors import StrataError

__all__ = ["host_arch", "image_platform", "mismatch", "parse_platform", "platform_string"]

_OSES = {"aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js", "linux", "nacl",
         "netbsd", "openbsd", "plan9", "solaris", "windows", "zos"}
_ARCHES = {"386", "amd64", "amd64p32", "arm", "armbe", "arm64", "arm64be", "ppc64", "ppc64le", "loong64", "mips",
           "mipsle", "mips64", "mips64le", "mips64p32", "mips64p32le", "ppc", "riscv", "riscv64", "s390", "s390x",
           "sparc", "sparc64", "wasm"}
_ARCH_ALIASES = {"i386": ("386", ""), "x86_64": ("amd64", ""), "x86-64": ("amd64", ""), "aarch64": ("arm64", ""),
                 "armhf": ("arm", "v7"), "armel": ("arm", "v6")}


def host_arch() -> tuple[str, str]:
    """The machine's architecture as Go names it (``amd64``, ``arm64`` ...)."""
    return _normal_arch(host_platform.machine().lower(), "")


def _normal_arch(arch: str, variant: str) -> tuple[str, str]:
    """containerd's ``normalizeArch``: Go's names, arm variants as ``vN`` (arm64's v8 dropped)."""
    if arch in _ARCH_ALIASES:
        arch, variant = _ARCH_ALIASES[arch][0], variant or _ARCH_ALIASES[arch][1]
    if arch == "arm64" and variant in ("8", "v8"):
        variant = ""
    if arch == "arm" and variant and not variant.startswith("v"):
        variant = "v" + variant
    return arch, variant


def parse_platform(text: str) -> tuple[str, str, str]:
    """containerd's ``platforms.Parse`` (os, architecture, variant); Docker's error otherwise."""
    def error(why: str) -> StrataError:
        return StrataError(f'error parsing specified platform: "{text}": {why}: invalid argument', exit_code=125)

    parts = text.lower().split("/")
    if not all(re.fullmatch(r"[a-z0-9_-]+", p) for p in parts) or len(parts) > 3:
        raise error("invalid platform specifier" if len(parts) <= 3 else "cannot parse platform specifier")
    if len(parts) == 1:
        if parts[0] in _OSES:
            return (parts[0], *host_arch())
        arch, variant = _normal_arch(parts[0], "")
        if arch not in _ARCHES:
            raise error("unknown operating system or architecture")
        return "linux", arch, variant
    arch, variant = _normal_arch(parts[1], parts[2] if len(parts) == 3 else "")
    return parts[0], arch, variant


def platform_string(os_: str, arch: str, variant: str) -> str:
    """containerd's ``platforms.Format``."""
    return "/".join(p for p in (os_ or "unknown", arch or "unknown", variant) if p)


def image_platform(config: dict[str, Any]) -> tuple[str, str, str]:
    """An image config's (os, architecture, variant), normalised."""
    arch, variant = _normal_arch(str(config.get("architecture") or ""), str(config.get("variant") or ""))
    return str(config.get("os") or ""), arch, variant


def mismatch(name: str, wanted: tuple[str, str, str], config: dict[str, Any]) -> str | None:
    """Docker's NotFound text when the local image is for another platform (None when it matches;
    a wanted variant must match, none wanted takes any)."""
    actual = image_platform(config)
    same = wanted[0] == actual[0] and wanted[1] == actual[1] and (not wanted[2] or wanted[2] == actual[2])
    if same:
        return None
    return (f"image with reference {name} was found but does not match the specified platform: "
            f"wanted {platform_string(*wanted)}, actual: {platform_string(*actual)}")
