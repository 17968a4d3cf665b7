"""A read-only look at the image store's names for ``ps``'s IMAGE column, without opening the engine:
the full names (``docker.io/library/busybox:latest``, ``…@sha256:…``) an image ID has right now, and
Docker's normalisation of the common familiar forms (anything unusual: None, the caller goes the long way)."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
else:  # sqlite3's own classes and connect without sqlite3.dbapi2 (which loads datetime and collections.abc)
    import _sqlite3 as sqlite3

__all__ = ["full_name", "names_of"]


def names_of(root: str, image_id: str) -> set[str] | None:
    """The tags and digest references of ``image_id`` in the store at ``root``; None when there is no
    readable database (the caller goes the long way)."""
    path = os.path.join(root, "strata.db")
    if not os.path.exists(path):
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error:
        return None
    try:
        rows = conn.execute("SELECT name FROM tags WHERE image_id=? UNION ALL SELECT name FROM digests WHERE image_id=?",
                            (image_id, image_id)).fetchall()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return {str(r[0]) for r in rows}


def full_name(name: str) -> str | None:
    """``busybox`` -> ``docker.io/library/busybox:latest``, ``me/app:1`` -> ``docker.io/me/app:1``,
    ``localhost:5000/x`` -> ``localhost:5000/x:latest``; None for what this short form does not decide
    (upper case, an ``index.docker.io`` host, a malformed digest): the caller asks the reference grammar."""
    if not name or name != name.strip() or any(ch.isupper() for ch in name.partition("@")[0]):
        return None
    repo, at, digest = name.partition("@")
    if at:
        if not digest.startswith("sha256:") or len(digest) != 71:
            return None
        suffix = "@" + digest
        slash, colon = repo.rfind("/"), repo.rfind(":")
        if colon > slash:  # name:tag@digest: Docker keeps the digest only
            repo = repo[:colon]
    else:
        slash, colon = repo.rfind("/"), repo.rfind(":")
        repo, suffix = (repo[:colon], repo[colon:]) if colon > slash else (repo, ":latest")
    first, sep, _ = repo.partition("/")
    if first in ("index.docker.io", "registry-1.docker.io") or not repo:
        return None
    if not sep:
        repo = "docker.io/library/" + repo
    elif first == "docker.io":
        repo = repo if "/" in repo[len("docker.io/"):] else "docker.io/library/" + repo[len("docker.io/"):]
    elif not ("." in first or ":" in first or first == "localhost"):
        repo = "docker.io/" + repo
    return repo + suffix
