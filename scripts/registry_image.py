#!/usr/bin/env python3
"""Build an image of ``strata registry serve`` without a Dockerfile (``make registry-image``).

The image is assembled from what runs strata here: this Python interpreter (binary, standard library
and the shared libraries ``ldd`` names, each at the path it has on the host, so nothing is relocated),
strata's own package and the installed distributions it depends on (``pyproject.toml``'s
dependencies and theirs, file by file from their RECORDs). It is shaped as Docker Hub's ``registry:2``:
config at ``/etc/docker/registry/config.yml`` (distribution's keys, storage in ``/var/lib/registry``),
``EXPOSE 5000``, ``VOLUME /var/lib/registry``. Run it with strata or Docker the same way:

    strata run -d --name myregistry -p 5000:5000 --restart=always -v registry-data:/var/lib/registry IMAGE

Usage: ``registry_image.py [--tar FILE] [--tag REF] [--docker]``: writes the root filesystem tar
(``--tar``), imports it into strata's store as ``--tag`` (default ``strata-registry:latest``) with the
image config, and with ``--docker`` loads it into Docker too (``strata save | docker load``).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import tomllib
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
APP = "/opt/strata"  # strata and its dependencies inside the image
CONFIG_PATH = "etc/docker/registry/config.yml"
# registry:2's config, with the keys it has (strata reads distribution's config.yml)
CONFIG = """version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"""
CHANGES = [
    'ENTRYPOINT ["/usr/local/bin/strata", "registry", "serve"]',
    f'CMD ["--config", "/{CONFIG_PATH}"]',
    "EXPOSE 5000",
    'VOLUME ["/var/lib/registry"]',
    "ENV PYTHONUNBUFFERED=1",
]
# parts of the standard library a registry never imports
_STDLIB_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data",
                "site-packages", "dist-packages", "venv", "distutils",
                Path(str(sysconfig.get_config_var("LIBPL"))).name}  # libpython.a for embedding
_DYNLOAD_SKIP = ("_tkinter.", "_curses", "readline.", "_test", "xxlimited")  # X11, terminals: not a server's


def dependency_closure() -> list[metadata.Distribution]:
    """The installed distributions strata needs at run time: pyproject's dependencies, transitively."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    todo = [Requirement(r) for r in project["dependencies"]]
    seen: dict[str, metadata.Distribution] = {}
    while todo:
        req = todo.pop()
        key = re.sub(r"[-_.]+", "-", req.name).lower()
        if key in seen or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        dist = metadata.distribution(req.name)
        seen[key] = dist
        for raw in dist.requires or []:
            sub = Requirement(raw)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in ("", *req.extras)):
                todo.append(sub)
    return list(seen.values())


def dist_files(dist: metadata.Distribution) -> Iterator[tuple[Path, str]]:
    """(host path, path under the image's site dir) of every file a distribution installed."""
    for f in dist.files or []:
        rel = str(f)
        if rel.startswith("..") or rel.endswith(".pth"):
            continue  # scripts outside site-packages
        host = Path(str(f.locate()))
        if host.is_file():
            yield host, rel


def stdlib_files() -> Iterator[Path]:
    for key in ("stdlib", "platstdlib"):
        top = Path(sysconfig.get_paths()[key])
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if not (Path(dirpath) == top and d in _STDLIB_SKIP))
            for name in filenames:
                if not (name.startswith(_DYNLOAD_SKIP) or ".opt-" in name):
                    yield Path(dirpath) / name


def shared_libraries(objects: Iterable[Path]) -> set[str]:
    """Every library ``ldd`` resolves for these ELF files (the loader too), as the host paths it names."""
    libs: set[str] = set()
    for obj in objects:
        res = subprocess.run(["ldd", str(obj)], capture_output=True, text=True, check=False)
        for line in res.stdout.splitlines():
            m = re.search(r"(/\S+) \(0x", line)
            if m:
                libs.add(m.group(1))
    return libs


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def _add_dirs(tar: tarfile.TarFile, name: str, done: set[str]) -> None:
    parts = name.strip("/").split("/")[:-1]
    for i in range(1, len(parts) + 1):
        d = "/".join(parts[:i])
        if d not in done:
            done.add(d)
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)


def _add_file(tar: tarfile.TarFile, host: Path, name: str, done: set[str]) -> None:
    name = name.lstrip("/")
    if name in done:
        return
    _add_dirs(tar, name, done)
    done.add(name)
    info = tar.gettarinfo(str(host.resolve()), name)
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    with open(host, "rb") as f:
        tar.addfile(info, f)


def build_rootfs(out: Path) -> Path:
    """Write the image's root filesystem to ``out`` (a tar)."""
    python = Path(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))
    site = f"{APP}/lib"
    files: list[tuple[Path, str]] = [(python, str(python))]
    files += [(p, str(p)) for p in stdlib_files()]
    for dist in dependency_closure():
        files += [(host, f"{site}/{rel}") for host, rel in dist_files(dist)]
    src = REPO / "src" / "strata"
    files += [(p, f"{site}/strata/{p.relative_to(src)}") for p in sorted(src.rglob("*"))
              if p.is_file() and ("__pycache__" not in p.parts or sys.implementation.cache_tag in p.name)]
    elves = [host for host, _ in files if host == python or host.name.endswith(".so") or ".so." in host.name]
    files += [(Path(lib), lib) for lib in sorted(shared_libraries(elves))]
    launcher = f"#!{python} -I\nimport sys\nsys.path.insert(0, {site!r})\n" \
               "from strata.cli.main import main\nraise SystemExit(main())\n"
    done: set[str] = set()
    with tarfile.open(out, "w") as tar:
        for host, name in files:
            _add_file(tar, host, name, done)
        for d in ("tmp/", "var/lib/registry/", "etc/docker/registry/", "usr/local/bin/"):
            _add_dirs(tar, d + "x", done)
        _add_bytes(tar, CONFIG_PATH, CONFIG.encode(), 0o644)
        _add_bytes(tar, "usr/local/bin/strata", launcher.encode(), 0o755)
        _add_bytes(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644)
        _add_bytes(tar, "etc/group", b"root:x:0:\n", 0o644)
        certs = Path("/etc/ssl/certs/ca-certificates.crt")  # for a pull-through cache's upstream
        if certs.is_file():
            _add_file(tar, certs, str(certs), done)
    return out


def _strata(*args: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, "-m", "strata", *args], env=env, check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tar", type=Path, help="where to write the root filesystem tar (kept)")
    ap.add_argument("--tag", default="strata-registry:latest", help="the image's name in strata's store")
    ap.add_argument("--no-import", action="store_true", help="only write the tar")
    ap.add_argument("--docker", action="store_true", help="also load the image into Docker (docker load)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="strata-registry-image-") as tmp:
        tar = build_rootfs(args.tar or Path(tmp) / "rootfs.tar")
        if args.no_import:
            return 0
        changes = [a for c in CHANGES for a in ("-c", c)]
        _strata("import", *changes, str(tar), args.tag)
        if args.docker:
            saved = Path(tmp) / "image.tar"
            _strata("save", "-o", str(saved), args.tag)
            subprocess.run(["docker", "load", "-i", str(saved)], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
