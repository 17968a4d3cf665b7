"""The store's SQLite database: schema and connection setup."""

from __future__ import annotations

import os

from strata.errors import StoreError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path
else:  # sqlite3's own classes and connect without sqlite3.dbapi2 (which loads datetime and collections.abc)
    import _sqlite3 as sqlite3

__all__ = ["checkpointed_after_exit", "close", "connect", "exit_without_close"]

SCHEMA_VERSION = 1  # PRAGMA user_version of a database with this schema in WAL mode
SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    digest     TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    media_type TEXT NOT NULL DEFAULT '',
    diff_id    TEXT                       -- set for layer blobs: the tar they decompress to
);
CREATE INDEX IF NOT EXISTS blobs_diff_id ON blobs(diff_id);
CREATE TABLE IF NOT EXISTS layers (
    diff_id    TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,          -- Docker's layer size: the bytes of the files it holds
    tar_size   INTEGER NOT NULL DEFAULT 0 -- bytes of the uncompressed tar stream
);
CREATE TABLE IF NOT EXISTS images (
    id         TEXT PRIMARY KEY,          -- sha256 of the config bytes
    parent     TEXT NOT NULL DEFAULT '',  -- local parent image (built here), Docker's Parent
    added      REAL NOT NULL,
    manifest   TEXT NOT NULL DEFAULT ''   -- manifest digest it came with, if any
);
CREATE INDEX IF NOT EXISTS images_parent ON images(parent);
CREATE TABLE IF NOT EXISTS image_layers (
    image_id   TEXT NOT NULL,
    position   INTEGER NOT NULL,
    diff_id    TEXT NOT NULL,
    blob       TEXT NOT NULL,             -- the blob this image's manifest names for the layer
    PRIMARY KEY (image_id, position)
);
CREATE INDEX IF NOT EXISTS image_layers_diff ON image_layers(diff_id);
CREATE INDEX IF NOT EXISTS image_layers_blob ON image_layers(blob);
CREATE TABLE IF NOT EXISTS tags (
    name       TEXT PRIMARY KEY,          -- docker.io/library/ubuntu:14.04
    image_id   TEXT NOT NULL,
    seq        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tags_image ON tags(image_id);
CREATE TABLE IF NOT EXISTS digests (
    name       TEXT PRIMARY KEY,          -- localhost:5000/a/b@sha256:...
    image_id   TEXT NOT NULL,
    seq        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS digests_image ON digests(image_id);
"""


def _create_private(path: str | Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (an existing file is left as it is)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    except FileExistsError:
        pass


# [the program ends with os._exit (cli.main: ``build``), a process checkpoints the store after that
# (build.watchdog)]: both, and connections are left for the exit to drop (see exit_without_close)
_EXITING = [False, False]


def exit_without_close() -> None:
    """This process ends with ``os._exit`` after its command (the ``strata build`` program). Once a
    process that checkpoints the database after it is gone has started too (:func:`checkpointed_after_exit`:
    a build's watchdog), connections are left open for the exit to drop: the last connection's close
    checkpoints the WAL into the database (two fsyncs and the WAL's unlink: tens of milliseconds at a
    build's end, on its critical path), and the watchdog does that after the build instead. Committed
    transactions are in the WAL either way (``synchronous=NORMAL``: as durable as before the close)."""
    _EXITING[0] = True


def checkpointed_after_exit() -> None:
    """A process that opens and closes the database once this one has ended is running (a build's watchdog)."""
    _EXITING[1] = True


def close(conn: sqlite3.Connection) -> None:
    """``conn.close()``, unless the process ends without it and is checkpointed after (see exit_without_close)."""
    if not all(_EXITING):
        conn.close()


def connect(path: str | Path) -> sqlite3.Connection:
    """Open (and if new, create) the store database; failures become a clear ``StoreError``.

    A new database is created 0600 (SQLite gives its -wal and -shm files the database's mode). The
    schema and WAL mode (both persistent) are set up once: a database whose ``user_version`` says so
    is only opened, which every command does."""
    try:
        _create_private(path)
        conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=60000")
        conn.execute("PRAGMA synchronous=NORMAL")
        if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA + f"PRAGMA user_version={SCHEMA_VERSION};")
    except OSError as e:
        raise StoreError(f"cannot open the image store database {path}: {e.strerror}") from None
    except sqlite3.Error as e:
        raise StoreError(f"cannot open the image store database {path}: {e}") from None
    return conn
