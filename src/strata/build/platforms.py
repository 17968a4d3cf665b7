"""``--platform`` and ``FROM --platform=``: a platform specifier checked as containerd's parser does
(``os``, ``arch``, ``os/arch``, ``os/arch/variant``), in Docker's words. Docker 20.10's classic builder
uses a local image whatever platform it has; the platform decides what a pull fetches."""

from __future__ import annotations

import re

from strata.errors import StrataError

__all__ = ["check_platform"]

_OSES = frozenset({"aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js", "linux",
                   "nacl", "netbsd", "openbsd", "plan9", "solaris", "windows", "zos"})  # fmt: skip
_ARCHES = frozenset({"386", "amd64", "amd64p32", "arm", "armbe", "arm64", "arm64be", "ppc64", "ppc64le", "loong64",
                     "mips", "mipsle", "mips64", "mips64le", "mips64p32", "mips64p32le", "ppc", "riscv", "riscv64",
                     "s390", "s390x", "sparc", "sparc64", "wasm", "aarch64", "x86_64", "i386", "armhf", "armel"})  # fmt: skip
_COMPONENT = re.compile(r"[A-Za-z0-9_-]+")


def check_platform(text: str) -> str:
    """The specifier, lower-cased, or Docker's error for it."""
    low = text.lower()
    parts = low.split("/")
    if len(parts) > 3:
        raise StrataError(f'"{text}": cannot parse platform specifier: invalid argument')
    if not all(_COMPONENT.fullmatch(p) for p in parts):
        raise StrataError(f'"{text}": unknown operating system or architecture: invalid argument')
    if len(parts) == 1 and parts[0] not in _OSES and parts[0] not in _ARCHES:
        raise StrataError(f'"{text}": unknown operating system or architecture: invalid argument')
    return low
