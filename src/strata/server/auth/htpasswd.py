"""Basic auth against an Apache htpasswd file of bcrypt hashes (``strata registry htpasswd``)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import os
import threading
import time
from collections import OrderedDict

import bcrypt
from aiohttp import web

from strata.atomicfile import write_bytes_atomic
from strata.distribution import errcodes as ec
from strata.errors import StrataError
from strata.server.auth.base import ALL, Authenticator, Identity, Scope
from strata.server.handlers.base import APIError

__all__ = ["HtpasswdAuth", "HtpasswdFile", "add_user", "basic_credentials", "hash_password"]


def hash_password(password: str, rounds: int = 10) -> str:
    """A bcrypt hash in htpasswd's ``$2y$`` form."""
    h: bytes = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds))
    return "$2y$" + h.decode()[4:]


def add_user(path: str, user: str, password: str, create: bool = False) -> None:
    """Add or replace ``user`` in the htpasswd file at ``path`` (atomic rewrite)."""
    if not user or ":" in user:
        raise StrataError(f"invalid user name {user!r}")
    lines: list[str] = []
    if not create:
        try:
            with open(path, encoding="utf-8") as f:
                lines = [ln.rstrip("\n") for ln in f if ln.strip() and not ln.startswith(f"{user}:")]
        except FileNotFoundError:
            raise StrataError(f"cannot open {path}: no such file (use -c to create it)")
    lines.append(f"{user}:{hash_password(password)}")
    write_bytes_atomic(path, ("\n".join(lines) + "\n").encode(), mode=0o600)


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


FAILURE_TTL = 10.0
FAILURE_CACHE_SIZE = 4096
_BCRYPT_SLOTS = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))


def _cost(h: bytes) -> int:
    """The cost of a ``$2?$NN$...`` hash (10 when it cannot be read)."""
    parts = h.split(b"$")
    return int(parts[2]) if len(parts) > 3 and parts[2].isdigit() and 4 <= int(parts[2]) <= 31 else 10


class HtpasswdFile:
    """The users of an htpasswd file, re-read when it changes.

    Verified passwords are cached, and so, for ``FAILURE_TTL`` seconds, are failures (a bounded
    cache), so repeating a wrong password costs no bcrypt. A user who is not in the file is checked
    against a dummy hash of the same cost, so an answer takes as long whether the user exists or not.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._mtime = -1.0
        self._users: dict[str, bytes] = {}
        self._ok: dict[str, bytes] = {}
        self._failed: OrderedDict[bytes, float] = OrderedDict()
        self._dummies: dict[int, bytes] = {}

    def _load(self) -> None:
        try:
            mtime = os.stat(self.path).st_mtime
        except FileNotFoundError:
            self._users, self._ok, self._mtime = {}, {}, -1.0
            return
        if mtime == self._mtime:
            return
        users: dict[str, bytes] = {}
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                user, sep, h = line.strip().partition(":")
                if sep and user:
                    users[user] = h.encode()
        self._users, self._ok, self._mtime = users, {}, mtime
        self._failed.clear()

    @staticmethod
    def _check(h: bytes, password: str) -> bool:
        if h[:4] in (b"$2y$", b"$2x$"):
            h = b"$2b$" + h[4:]
        try:
            with _BCRYPT_SLOTS:
                return bool(bcrypt.checkpw(password.encode(), h))
        except ValueError:
            return False

    def _dummy(self) -> bytes:
        """A hash of a random password, at the cost the file's users have (made once per cost)."""
        cost = _cost(next(iter(self._users.values()), b""))
        dummy = self._dummies.get(cost)
        if dummy is None:
            dummy = self._dummies[cost] = bcrypt.hashpw(os.urandom(16).hex().encode(), bcrypt.gensalt(cost))
        return dummy

    def _compare_dummy(self, password: str) -> bool:
        self._check(self._dummy(), password)
        return False

    def hash_of(self, user: str) -> bytes | None:
        """The user's current password hash (None when the user is not in the file)."""
        self._load()
        return self._users.get(user)

    def _recently_failed(self, key: bytes) -> bool:
        now = time.monotonic()
        while self._failed and next(iter(self._failed.values())) <= now:
            self._failed.popitem(last=False)
        return key in self._failed

    def _remember_failure(self, key: bytes) -> None:
        self._failed[key] = time.monotonic() + FAILURE_TTL
        self._failed.move_to_end(key)
        while len(self._failed) > FAILURE_CACHE_SIZE:
            self._failed.popitem(last=False)

    async def verify(self, user: str, password: str) -> bool:
        self._load()
        h = self._users.get(user)
        attempt = hashlib.sha256(user.encode() + b"\0" + password.encode()).digest()
        if self._recently_failed(attempt):
            return False
        fingerprint = hashlib.sha256((h or b"") + b"\0" + password.encode()).digest()
        if h is not None and self._ok.get(user) == fingerprint:
            return True
        if h is None:
            ok = await asyncio.to_thread(self._compare_dummy, password)
        else:
            ok = await asyncio.to_thread(self._check, h, password)
        if ok:
            self._ok[user] = fingerprint
        else:
            self._remember_failure(attempt)
        return ok


class HtpasswdAuth(Authenticator):
    def __init__(self, realm: str, path: str) -> None:
        self.realm = realm
        self.users = HtpasswdFile(path)

    async def identify(self, request: web.Request) -> Identity:
        creds = basic_credentials(request)
        if creds is None:
            return Identity(None)
        if await self.users.verify(*creds):
            return Identity(creds[0], authenticated=True, grants=lambda rtype, name: ALL)
        return Identity(None, rejected=True)

    def deny(self, request: web.Request, identity: Identity, scopes: list[Scope]) -> Exception:
        return APIError(ec.UNAUTHORIZED, headers={"WWW-Authenticate": f'Basic realm="{self.realm}"'})
