"""``--platform`` and ``FROM --platform=``: a platform specifier checked as containerd's parser does
(``os``, ``arch``, ``os/arch``, ``os/arch/variant``), in Docker's words. Docker 20.10's classic builder
uses a local image whatever platform it has; the platform decides what a pull fetches. BuildKit's
automatic platform ARGs (``TARGETPLATFORM``, ``TARGETOS``, ``TARGETARCH``, ``TARGETVARIANT`` and the
same four of ``BUILD``) come from ``--platform`` (normalised as containerd does) and the host. As
BuildKit's, a build with ``--platform`` makes an image of that platform (its ``os``, ``architecture`` and
``variant``) whatever platform its stages ran on; without it the image keeps its base's. A step container
of an image of another platform than the host's is announced with Docker 20.10's warning (the daemon's
on ``create``, which the classic builder prints before `` ---> Running in``)."""

from __future__ import annotations

import os
import re

from strata.errors import StrataError

TYPE_CHECKING = False  # not typing's: importing typing costs a cached build's start-up
if TYPE_CHECKING:
    from strata.digest import Digest
    from strata.engine import Engine

__all__ = ["check_platform", "host_warnings", "platform_args", "scratch_doc", "target_image"]

_OSES = frozenset({"aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js", "linux",
                   "nacl", "netbsd", "openbsd", "plan9", "solaris", "windows", "zos"})  # fmt: skip
_ARCHES = frozenset({"386", "amd64", "amd64p32", "arm", "armbe", "arm64", "arm64be", "ppc64", "ppc64le", "loong64",
                     "mips", "mipsle", "mips64", "mips64le", "mips64p32", "mips64p32le", "ppc", "riscv", "riscv64",
                     "s390", "s390x", "sparc", "sparc64", "wasm", "aarch64", "x86_64", "i386", "armhf", "armel"})  # fmt: skip
_COMPONENT = re.compile(r"[A-Za-z0-9_-]+")
# containerd's normalizeArch: Go's names, the default variant of arm
_ALIASES = {"i386": ("386", ""), "x86_64": ("amd64", ""), "x86-64": ("amd64", ""), "aarch64": ("arm64", ""),
            "armhf": ("arm", "v7"), "armel": ("arm", "v6"), "i686": ("386", ""), "armv7l": ("arm", "v7"),
            "armv6l": ("arm", "v6")}  # fmt: skip


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


def _normal(arch: str, variant: str) -> tuple[str, str]:
    """containerd's ``normalizeArch``: ``arm`` is v7 unless told, arm64's v8 and amd64's v1 dropped."""
    arch, default = _ALIASES.get(arch, (arch, ""))
    variant = variant or default
    if (arch, variant) in (("arm64", "8"), ("arm64", "v8"), ("amd64", "1"), ("amd64", "v1")):
        variant = ""
    elif arch == "arm":
        variant = {"": "v7", "5": "v5", "6": "v6", "7": "v7", "8": "v8"}.get(variant, variant)
    return arch, variant


def _parts(spec: str | None) -> tuple[str, str, str]:
    """(os, arch, variant) of a checked specifier; the host's for None."""
    # the host: os.uname().machine is platform.machine(), without importing platform
    if not spec:
        return ("linux", *_normal(os.uname().machine.lower(), ""))
    parts = spec.lower().split("/")
    if len(parts) == 1:
        if parts[0] in _OSES:
            return (parts[0], *_normal(os.uname().machine.lower(), ""))
        return ("linux", *_normal(parts[0], ""))
    return (parts[0], *_normal(parts[1], parts[2] if len(parts) == 3 else ""))


def platform_args(target: str | None, given: dict[str, str | None] | None = None) -> dict[str, str | None]:
    """BuildKit's automatic ARGs for a build for ``target`` (``--platform``; None: the host's) on this
    host, as meta ARGs (defined before the first FROM); a ``--build-arg`` in ``given`` overrides one."""
    out: dict[str, str | None] = {}
    for prefix, spec in (("TARGET", target), ("BUILD", None)):
        os_, arch, variant = _parts(spec)
        out[prefix + "PLATFORM"] = f"{os_}/{arch}" + (f"/{variant}" if variant else "")
        out[prefix + "OS"], out[prefix + "ARCH"], out[prefix + "VARIANT"] = os_, arch, variant
    for key in out:
        if (given or {}).get(key) is not None:
            out[key] = (given or {})[key]
    return out


def target_image(engine: Engine, image_id: Digest, target: str | None) -> Digest:
    """The built image for ``--platform`` ``target`` (BuildKit's exporter: the target platform's
    ``os``/``architecture``/``variant``): ``image_id`` when it has them, else its layers and config
    with them (an image of its own, ``image_id`` its parent). No ``target``: the image as built."""
    if not target:
        return image_id
    from strata.build.layerstore import commit_layer

    os_, arch, variant = _parts(target)
    data = dict(engine.image_config(image_id).data)
    if (data.get("os"), data.get("architecture"), data.get("variant") or "") == (os_, arch, variant):
        return image_id
    data["os"], data["architecture"] = os_, arch
    data.pop("variant", None)
    if variant:
        data["variant"] = variant
    with engine.writing():
        return commit_layer(engine, data, None, image_id)


def _host_platform() -> tuple[str, str, str]:
    """The host's platform as containerd's ``DefaultSpec``: arm64's variant is v8, arm's the CPU's."""
    os_, arch, variant = _parts(None)
    return os_, arch, variant or ("v8" if arch == "arm64" else "")


def _runs_here(image: tuple[str, str, str], host: tuple[str, str, str]) -> bool:
    """containerd's ``Only(host)``: the host's os and architecture (its variant or an older one of arm;
    an arm64 host runs 32-bit arm up to v8)."""
    (os_, arch, variant), (h_os, h_arch, h_variant) = image, host
    if os_ != h_os:
        return False
    older = {"v5": 5, "v6": 6, "v7": 7, "v8": 8}
    if (arch, h_arch) in (("arm", "arm"), ("arm", "arm64")):
        return older.get(variant, 99) <= older.get(h_variant, 8)
    return arch == h_arch and variant in ("", h_variant)


def host_warnings(doc: dict[str, object] | None) -> list[str]:
    """The line a step's container of the image ``doc`` gets when its platform is not the host's
    (none for ``scratch`` or an image that names no architecture)."""
    if not doc or not doc.get("architecture"):
        return []
    image = (str(doc.get("os") or ""), str(doc["architecture"]), str(doc.get("variant") or ""))
    host = _host_platform()
    if _runs_here((image[0], *_normal(image[1], image[2])), host):
        return []
    named = "/".join(p for p in image if p)
    return [f" ---> [Warning] The requested image's platform ({named}) does not match the detected host platform"
            f" ({'/'.join(p for p in host if p)}) and no specific platform was requested"]  # fmt: skip


def scratch_doc(spec: str | None) -> dict[str, object]:
    """What a ``FROM scratch`` stage's images get their platform from (the classic builder's empty
    image): ``FROM --platform``'s, else ``--platform``'s, else the host's (containerd's ``DefaultSpec``)."""
    os_, arch, variant = _parts(spec) if spec else _host_platform()
    return {"architecture": arch, "os": os_, **({"variant": variant} if variant else {})}
