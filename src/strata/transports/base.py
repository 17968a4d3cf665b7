"""What every transport implements: ``ImageSink`` and the progress events copies report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from strata.digest import Digest
from strata.image.api import Image
from strata.reference import Reference

__all__ = ["NO_PROGRESS", "ImageSink", "Progress", "ProgressEvent", "WriteResult"]


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One line of Docker-style progress: ``<short id>: <status>`` (id may be empty for whole-image lines).

    ``current``/``total`` carry byte counts for progress bars (0 when unknown)."""

    id: str
    status: str
    current: int = 0
    total: int = 0


Progress = Callable[[ProgressEvent], None]


def NO_PROGRESS(_: ProgressEvent) -> None:
    return None


@dataclass(frozen=True, slots=True)
class WriteResult:
    image_id: Digest
    manifest_digest: Digest | None = None
    manifest_size: int = 0


class ImageSink(Protocol):
    """Takes images. ``write`` copies every blob the sink lacks (asking first), then the config and
    manifest, then makes the whole visible at once; on error nothing new is visible."""

    def write(self, image: Image, tags: list[Reference], progress: Progress = NO_PROGRESS) -> WriteResult: ...
