"""How the image store learns what containers use, without importing the container package.

The store must not delete an image a container was created from, nor an unpacked layer a container's
rootfs still stacks; ``system df`` and ``inspect`` also ask about containers. The container package
implements :class:`ContainerUse` (``strata.container.usage``) and registers it when imported; the CLI
imports it before opening the engine. Nothing fails open: when containers exist in a store and no
provider is registered, asking raises instead of answering "none in use".
"""

from __future__ import annotations

import os

from strata.digest import Digest
from strata.errors import StrataError

TYPE_CHECKING = False  # every command loads this module: typing's import costs a listing command
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, Protocol
else:
    Protocol = object  # the protocol matters to the type checker only

__all__ = ["ContainerUse", "NoContainerUse", "current", "register"]


class ContainerUse(Protocol):
    """What the image side may ask about the containers of the store at ``root``."""

    def images_in_use(self, root: Path) -> dict[Digest, list[tuple[str, bool]]]:
        """Image ID -> (container ID, running) of the containers created from it, oldest first."""
        ...

    def layer_dirs_in_use(self, root: Path) -> set[str]:
        """Names of the unpacked layer directories some container's rootfs stacks."""
        ...

    def disk_usage(self, root: Path) -> tuple[int, int, int, int]:
        """``system df``'s Containers row: (containers, active, bytes, reclaimable bytes)."""
        ...

    def volume_usage(self, root: Path) -> tuple[int, int, int, int]:
        """``system df``'s Local Volumes row: (volumes, those in use, bytes, bytes of the unused ones)."""
        ...

    def inspect(self, root: str | Path, name: str) -> dict[str, Any] | None:
        """The inspect document of the container ``name``, or ``None`` when no container has it."""
        ...


class NoContainerUse:
    """The answer for a store that has no containers."""

    def images_in_use(self, root: Path) -> dict[Digest, list[tuple[str, bool]]]:
        return {}

    def layer_dirs_in_use(self, root: Path) -> set[str]:
        return set()

    def disk_usage(self, root: Path) -> tuple[int, int, int, int]:
        return 0, 0, 0, 0

    def volume_usage(self, root: Path) -> tuple[int, int, int, int]:
        return 0, 0, 0, 0

    def inspect(self, root: str | Path, name: str) -> dict[str, Any] | None:
        return None


_registered: list[ContainerUse] = []


def register(provider: ContainerUse) -> None:
    """Install ``provider`` (the last one registered answers)."""
    _registered.append(provider)


def current(root: str | Path) -> ContainerUse:
    """The registered provider; with none, :class:`NoContainerUse` for a store without containers,
    else an error (answering "nothing in use" could delete what a container needs)."""
    if _registered:
        return _registered[-1]
    if os.path.exists(os.path.join(root, "containers.db")) or os.path.exists(os.path.join(root, "containers")):
        raise StrataError(
            f"the store at {root} has containers but no container provider is registered "
            "(import strata.container.usage)"
        )
    return NoContainerUse()
