"""``copy_image``: the one operation behind pull, push, save, load and copy — an image from a source into a sink."""

from __future__ import annotations

from strata.image.api import Image
from strata.reference import Reference
from strata.transports.base import NO_PROGRESS, ImageSink, Progress, WriteResult

__all__ = ["copy_image"]


def copy_image(
    image: Image, sink: ImageSink, tags: list[Reference] | None = None, progress: Progress = NO_PROGRESS
) -> WriteResult:
    """Copy ``image`` into ``sink`` under ``tags``; the sink streams each blob it lacks and commits last."""
    return sink.write(image, list(tags or []), progress)
