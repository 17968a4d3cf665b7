"""``rename``: a container's new name, with Docker's checks (same name, a name in use, a valid name)."""

from __future__ import annotations

import re

from strata.container.records import Container, ContainerStore
from strata.errors import StrataError

__all__ = ["rename"]

_VALID = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+")


def rename(store: ContainerStore, ref: str, new: str) -> Container:
    """Docker's ``ContainerRename``: ``new`` may carry Docker's leading ``/``."""
    c = store.get(ref)
    name = new if new.startswith("/") else "/" + new
    if name == "/" + c.name:
        raise StrataError("Renaming a container with the same name as its current name")
    if not _VALID.fullmatch(name):
        raise StrataError(f"Error when allocating new name: Invalid container name ({name}), only "
                          "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    renamed = store.rename(c.id, name[1:])
    from strata.events import record_container

    record_container(store.root, "rename", c.id, renamed.name, renamed.image_name, renamed.config.get("Labels"),
                     {"oldName": "/" + c.name})
    return renamed
