"""``export``: the container's whole filesystem (image layers + its changes) as one flat tar."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from strata.archive import write_tar_from_dir
from strata.atomicfile import copy_to_file
from strata.container.lifecycle import container_lock
from strata.container.records import Container, ContainerStore, container_dir
from strata.container.rootfs import Rootfs
from strata.errors import ContainerNotFound, StrataError, os_error_text

__all__ = ["export"]


class _FdWriter:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        return len(data)


def export(store: ContainerStore, c: Container, output: str | Path | None, *, out_fd: int = 1) -> None:
    """Write the flattened tar to ``output`` (atomically) or to ``out_fd``."""
    with container_lock(store.root, c.id):
        if store.by_id(c.id) is None:
            raise ContainerNotFound(c.name)
        rootfs = Rootfs(container_dir(store.root, c.id), c.driver)
        was_mounted = rootfs.mounted()
        rootfs.mount()
        try:
            owners = _keep_id_owners(c)
            if output is None:
                write_tar_from_dir(rootfs.path, _FdWriter(out_fd), on_member=owners)
                return
            _export_file(rootfs.path, output, owners)
        finally:
            current = store.by_id(c.id)
            if not was_mounted and (current is None or not current.running):
                rootfs.unmount()


def _keep_id_owners(c: Container) -> Any:
    """A keep-id container's rootfs is read in the rootless namespace: its owners as the container sees
    them (uid 0 in the tar is container root, as for every other container); None for any other."""
    if c.host_config.get("UsernsMode") != "keep-id":
        return None
    from strata.rootless.keepid import container_owners

    return container_owners()


def _export_file(src: Path, output: str | Path, owners: Any) -> None:
    try:  # the Docker CLI's CopyToFile: an existing directory is Go's rename error
        copy_to_file(str(output), lambda f: write_tar_from_dir(src, f, on_member=owners))
    except FileExistsError as e:
        raise StrataError(e.strerror or str(e)) from None
    except OSError as e:
        output = Path(output).absolute()
        raise StrataError(f"failed to export container: write {output}: {os_error_text(e)}") from None
