"""Registry authentication: ``WWW-Authenticate`` challenges, Basic, and Docker's token auth.

A registry answers an unauthenticated request with ``401`` and a challenge such as
``Bearer realm="https://auth.example/token",service="registry",scope="repository:x:pull"``. For ``Basic`` the
stored credentials are sent as they are; for ``Bearer`` a token is fetched from the realm
(``GET realm?service=..&scope=..&account=..`` with Basic credentials, or an OAuth2 ``POST`` with a refresh
token when the login holds an identity token) and cached per set of scopes until it expires.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from strata.distribution.credentials import Credentials
from strata.errors import RegistryErrorDetail, StrataError, TransportError, Unauthorized
from strata.image.spec import load_json

__all__ = [
    "Authenticator",
    "Challenge",
    "TokenRequest",
    "basic_header",
    "parse_challenges",
    "repository_scope",
]

# (method, url, headers, body) -> (status, body bytes)
TokenRequest = Callable[[str, str, dict[str, str], bytes | None], tuple[int, bytes]]

_TOKEN_RE = re.compile(r"\s*([A-Za-z][A-Za-z0-9_.+-]*)\s*")
_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?')
_MIN_TOKEN_LIFETIME = 60.0


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "basic", "bearer"
    params: dict[str, str] = field(default_factory=dict)


def parse_challenges(headers: Iterable[str]) -> list[Challenge]:
    """Every challenge of every ``WWW-Authenticate`` header value, in order."""
    out: list[Challenge] = []
    for value in headers:
        pos = 0
        while pos < len(value):
            m = _TOKEN_RE.match(value, pos)
            if not m:
                break
            scheme = m.group(1).lower()
            pos = m.end()
            params: dict[str, str] = {}
            while pos < len(value):
                pm = _PARAM_RE.match(value, pos)
                if not pm or pm.end() == pos:
                    break
                # a bare token (the next scheme) has no '=' and fails the match above
                raw = pm.group(2)
                if raw.startswith('"'):
                    raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
                params[pm.group(1).lower()] = raw
                pos = pm.end()
            out.append(Challenge(scheme, params))
            while pos < len(value) and value[pos] in ", ":
                pos += 1
    return out


def basic_header(creds: Credentials) -> str:
    raw = f"{creds.username}:{creds.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def repository_scope(repo: str, *actions: str) -> str:
    return f"repository:{repo}:{','.join(actions or ('pull',))}"


def _token_answer(body: bytes, realm: str) -> dict[str, Any]:
    """The token server's JSON object (any other answer, or one nested without end, is an error)."""
    try:
        obj = load_json(body, "token response")
    except StrataError:
        obj = None
    if not isinstance(obj, dict):
        raise TransportError(f"invalid token response from {realm}")
    return obj


def _lifetime(value: object) -> float:
    """``expires_in`` in seconds (60, as Docker, when missing or not a number)."""
    try:
        return float(value) if value and not isinstance(value, bool) else 60.0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 60.0


def _error_from_body(body: bytes, status: int) -> Unauthorized:
    details: list[RegistryErrorDetail] = []
    try:
        obj = load_json(body, "error body")
        for e in obj.get("errors") or []:
            details.append(RegistryErrorDetail(str(e.get("code", "")), str(e.get("message", "")), e.get("detail")))
        if not details and obj.get("details"):
            details.append(RegistryErrorDetail("UNAUTHORIZED", str(obj["details"])))
    except (StrataError, AttributeError, TypeError):
        pass
    if details:
        d = details[0]
        msg = f"{d.code.lower().replace('_', ' ')}: {d.message}" if d.code else d.message
    else:
        msg = "unauthorized: authentication required"
    return Unauthorized(msg, status=status, errors=details)


class Authenticator:
    """Answers challenges for one registry with one set of credentials; thread-safe."""

    def __init__(self, creds: Credentials, request: TokenRequest, *, client_id: str = "strata") -> None:
        self.creds = creds
        self._request = request
        self._client_id = client_id
        self._lock = threading.Lock()
        self.challenge: Challenge | None = None
        self._tokens: dict[frozenset[str], tuple[str, float]] = {}
        self.refresh_token = ""

    def header(self, scopes: Iterable[str]) -> str | None:
        """The ``Authorization`` value to send now (None before any challenge, or without creds for Basic)."""
        ch = self.challenge
        if ch is None:
            return None
        if ch.scheme == "basic":
            return basic_header(self.creds) if self.creds else None
        if ch.scheme == "bearer":
            key = frozenset(scopes)
            with self._lock:
                cached = self._tokens.get(key)
            if cached and cached[1] > time.monotonic():
                return f"Bearer {cached[0]}"
            return None
        return None

    def answer(self, www_authenticate: list[str], scopes: Iterable[str]) -> bool:
        """Learn from a 401; True when a retry with new credentials can succeed."""
        challenges = parse_challenges(www_authenticate)
        chosen = next((c for c in challenges if c.scheme == "bearer"), None) or next(
            (c for c in challenges if c.scheme == "basic"), None
        )
        if chosen is None:
            return False
        self.challenge = chosen
        if chosen.scheme == "basic":
            return bool(self.creds)
        wanted = set(scopes)
        extra = chosen.params.get("scope")
        if extra:
            wanted.update(extra.split(" "))
        self.fetch_token(wanted, cache_key=frozenset(scopes))
        return True

    def fetch_token(self, scopes: Iterable[str], *, cache_key: frozenset[str] | None = None) -> str:
        """Get (and cache) a bearer token for ``scopes`` from the challenge's realm."""
        ch = self.challenge
        if ch is None or ch.scheme != "bearer" or not ch.params.get("realm"):
            raise TransportError("registry did not offer token authentication")
        scope_list = sorted(s for s in scopes if s)
        realm, service = ch.params["realm"], ch.params.get("service", "")
        if self.creds.identity_token or self.refresh_token:
            status, body = self._oauth(realm, service, scope_list)
        else:
            status, body = self._get_token(realm, service, scope_list)
        if status in (401, 403):
            raise _error_from_body(body, status)
        if status != 200:
            raise TransportError(f"token request to {realm} failed with status {status}")
        obj = _token_answer(body, realm)
        token = str(obj.get("token") or obj.get("access_token") or "")
        if not token:
            raise TransportError(f"no token in response from {realm}")
        if obj.get("refresh_token"):
            self.refresh_token = str(obj["refresh_token"])
        lifetime = max(_lifetime(obj.get("expires_in")), _MIN_TOKEN_LIFETIME)
        with self._lock:
            key = cache_key if cache_key is not None else frozenset(scope_list)
            self._tokens[key] = (token, time.monotonic() + lifetime - 5)
        return token

    def _get_token(self, realm: str, service: str, scopes: list[str]) -> tuple[int, bytes]:
        query: list[tuple[str, str]] = []
        if service:
            query.append(("service", service))
        query += [("scope", s) for s in scopes]
        headers: dict[str, str] = {}
        if self.creds.username:
            query.append(("account", self.creds.username))
            headers["Authorization"] = basic_header(self.creds)
        if self.creds.username and not scopes:
            query.append(("offline_token", "true"))
            query.append(("client_id", self._client_id))
        sep = "&" if "?" in realm else "?"
        url = realm + (sep + urlencode(query) if query else "")
        return self._request("GET", url, headers, None)

    def _oauth(self, realm: str, service: str, scopes: list[str]) -> tuple[int, bytes]:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self.refresh_token or self.creds.identity_token,
            "service": service,
            "client_id": self._client_id,
            "scope": " ".join(scopes),
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return self._request("POST", realm, headers, urlencode(form).encode())
