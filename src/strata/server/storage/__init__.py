"""Registry storage: a path-keyed driver and the content-addressed layout on top of it."""

from __future__ import annotations

from strata.server.storage.driver import (
    FileInfo,
    FileWriter,
    InvalidOffset,
    InvalidPath,
    PathNotFound,
    StorageDriver,
    StorageError,
)
from strata.server.storage.filesystem import FilesystemDriver
from strata.server.storage.inmemory import InMemoryDriver

__all__ = [
    "FileInfo",
    "FileWriter",
    "FilesystemDriver",
    "InMemoryDriver",
    "InvalidOffset",
    "InvalidPath",
    "PathNotFound",
    "StorageDriver",
    "StorageError",
]
