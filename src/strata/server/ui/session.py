"""UI sessions and CSRF tokens.

Every visitor carries a random session id in an HttpOnly, SameSite=Strict cookie scoped to the UI's
path (Secure over TLS). Only a successful sign-in stores anything on the server (the account, the
password hash it was checked against, an expiry), under a fresh id, so a planted id is worthless.
The CSRF token of a form is an HMAC of the session id with a key that lives only in this process;
a POST must carry it and, when the browser says where it comes from, come from the UI's own origin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

from aiohttp import web

__all__ = ["COOKIE", "Session", "SessionStore"]

COOKIE = "strata_ui"
MAX_SESSIONS = 10_000


@dataclass
class Session:
    account: str
    fingerprint: bytes | None
    expires: float


class SessionStore:
    def __init__(self, ttl: float, path: str) -> None:
        self.ttl = ttl
        self.path = path
        self._key = secrets.token_bytes(32)
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    @staticmethod
    def session_id(request: web.Request) -> str | None:
        sid = request.cookies.get(COOKIE, "")
        return sid if 20 <= len(sid) <= 64 and sid.replace("-", "").replace("_", "").isalnum() else None

    def get(self, sid: str | None) -> Session | None:
        s = self._sessions.get(sid or "")
        if s is not None and s.expires < time.time():
            self._sessions.pop(sid or "", None)
            return None
        return s

    def create(self, account: str, fingerprint: bytes | None) -> str:
        now = time.time()
        while self._sessions and (len(self._sessions) >= MAX_SESSIONS or next(iter(self._sessions.values())).expires < now):
            self._sessions.popitem(last=False)
        sid = secrets.token_urlsafe(32)
        self._sessions[sid] = Session(account, fingerprint, now + self.ttl)
        return sid

    def drop(self, sid: str | None) -> None:
        self._sessions.pop(sid or "", None)

    def csrf_token(self, sid: str) -> str:
        return hmac.new(self._key, sid.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, request: web.Request, sid: str | None, token: str) -> bool:
        if sid is None or not hmac.compare_digest(self.csrf_token(sid), token):
            return False
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            return False
        origin = request.headers.get("Origin")
        return origin is None or origin == f"{request.scheme}://{request.host}"

    def set_cookie(self, response: web.StreamResponse, request: web.Request, sid: str) -> None:
        response.set_cookie(COOKIE, sid, path=self.path, httponly=True, samesite="Strict", secure=request.secure)
