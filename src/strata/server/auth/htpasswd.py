"""Basic auth against an Apache htpasswd file of bcrypt hashes (``strata registry htpasswd``)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import os

import bcrypt
from aiohttp import web

from strata.atomicfile import write_bytes_atomic
from strata.distribution import errcodes as ec
from strata.errors import StrataError
from strata.server.auth.base import Authenticator, Scope
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


class HtpasswdFile:
    """The users of an htpasswd file, re-read when it changes; verified passwords are cached."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._mtime = -1.0
        self._users: dict[str, bytes] = {}
        self._ok: dict[str, bytes] = {}

    def _load(self) -> None:
        try:
            mtime = os.stat(self.path).st_mtime
        except FileNotFoundError:
            self._users, self._ok = {}, {}
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

    def _check(self, h: bytes, password: str) -> bool:
        if h.startswith(b"$2y$"):
            h = b"$2b$" + h[4:]
        try:
            return bool(bcrypt.checkpw(password.encode(), h))
        except ValueError:
            return False

    def hash_of(self, user: str) -> bytes | None:
        """The user's current password hash (None when the user is not in the file)."""
        self._load()
        return self._users.get(user)

    async def verify(self, user: str, password: str) -> bool:
        self._load()
        h = self._users.get(user)
        if h is None:
            return False
        fingerprint = hashlib.sha256(h + b"\0" + password.encode()).digest()
        if self._ok.get(user) == fingerprint:
            return True
        ok = await asyncio.to_thread(self._check, h, password)
        if ok:
            self._ok[user] = fingerprint
        return ok


class HtpasswdAuth(Authenticator):
    def __init__(self, realm: str, path: str) -> None:
        self.realm = realm
        self.users = HtpasswdFile(path)

    async def account(self, request: web.Request) -> str | None:
        creds = basic_credentials(request)
        if creds is not None and await self.users.verify(*creds):
            return creds[0]
        return None

    async def authorize(self, request: web.Request, scopes: list[Scope]) -> str | None:
        account = await self.account(request)
        if account is None:
            raise APIError(ec.UNAUTHORIZED, headers={"WWW-Authenticate": f'Basic realm="{self.realm}"'})
        return account

    async def may_pull(self, request: web.Request, name: str) -> bool:
        return await self.account(request) is not None
