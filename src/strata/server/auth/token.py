"""Docker token auth: Bearer JWT checks on the registry and a built-in token endpoint.

The endpoint (``GET /auth/token?service=&scope=&account=``) authenticates with Basic credentials
from an htpasswd file (or anonymously), grants each requested action the access rules allow and
returns an ES256-signed JWT with distribution's claims (``iss``, ``sub``, ``aud``, ``exp``, ``nbf``,
``iat``, ``jti``, ``access``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
import uuid
from typing import Any

import jwt
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec as crypto_ec

from strata.distribution import errcodes as ec
from strata.server.auth.access import AccessRules
from strata.server.auth.base import Authenticator, Scope, parse_scope
from strata.server.auth.htpasswd import HtpasswdFile, basic_credentials
from strata.server.config import TokenConfig
from strata.server.handlers.base import APIError

__all__ = ["TOKEN_PATH", "TokenAuth", "load_or_create_key"]

TOKEN_PATH = "/auth/token"
_ALGS = ["ES256", "ES384", "RS256", "RS384", "RS512", "PS256"]


def load_or_create_key(path: str | None) -> crypto_ec.EllipticCurvePrivateKey:
    """The signing key from ``path``; created there (mode 0600) when missing."""
    if path and os.path.exists(path):
        with open(path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        if not isinstance(key, crypto_ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path}: token signing key must be an EC key")
        return key
    key = crypto_ec.generate_private_key(crypto_ec.SECP256R1())
    if path:
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
    return key


def _key_id(public: Any) -> str:
    """libtrust-style key ID: base32 of the first 240 bits of the SPKI sha256, in 4-char groups."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i : i + 4] for i in range(0, 48, 4))


class TokenAuth(Authenticator):
    def __init__(self, config: TokenConfig) -> None:
        self.config = config
        self.key = load_or_create_key(config.signingkey) if config.builtin else None
        self.kid = _key_id(self.key.public_key()) if self.key is not None else ""
        self.verify_keys: list[Any] = [self.key.public_key()] if self.key is not None else []
        if config.rootcertbundle:
            self.verify_keys += _bundle_keys(config.rootcertbundle)
        self.users = HtpasswdFile(config.htpasswd) if config.htpasswd else None
        self.rules = AccessRules.load(config.accessfile, config.anonymouspull)

    # registry side --------------------------------------------------------------------------

    def _realm(self, request: web.Request) -> str:
        return self.config.realm or f"{request.scheme}://{request.host}{TOKEN_PATH}"

    def _challenge(self, request: web.Request, scopes: list[Scope], error: str | None) -> dict[str, str]:
        parts = [f'realm="{self._realm(request)}"', f'service="{self.config.service}"']
        if scopes:
            parts.append(f'scope="{" ".join(str(s) for s in scopes)}"')
        if error:
            parts.append(f'error="{error}"')
        return {"WWW-Authenticate": "Bearer " + ",".join(parts)}

    def _claims(self, request: web.Request) -> dict[str, Any] | None:
        header = request.headers.get("Authorization", "")
        if not header.lower().startswith("bearer "):
            return None
        token = header[7:].strip()
        for key in self.verify_keys:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token, key, algorithms=_ALGS, audience=self.config.service, issuer=self.config.issuer,
                    leeway=30, options={"require": ["exp", "iss", "aud"]},
                )
                return claims
            except jwt.PyJWTError:
                continue
        return None

    async def authorize(self, request: web.Request, scopes: list[Scope]) -> str | None:
        claims = self._claims(request)
        if claims is None:
            raise APIError(ec.UNAUTHORIZED, headers=self._challenge(request, scopes, None))
        granted: dict[tuple[str, str], set[str]] = {}
        for entry in claims.get("access") or []:
            key = (str(entry.get("type")), str(entry.get("name")))
            granted.setdefault(key, set()).update(entry.get("actions") or [])
        for scope in scopes:
            have = granted.get((scope.type, scope.name), set())
            if "*" not in have and not scope.actions <= have:
                raise APIError(
                    ec.DENIED if claims.get("sub") else ec.UNAUTHORIZED,
                    status=401,
                    detail=[{"Type": scope.type, "Name": scope.name, "Action": a} for a in sorted(scope.actions)],
                    headers=self._challenge(request, scopes, "insufficient_scope"),
                )
        sub = claims.get("sub")
        return str(sub) if sub else None

    async def _account(self, request: web.Request) -> tuple[bool, str | None]:
        """(credentials were valid or absent, account)."""
        claims = self._claims(request)
        if claims is not None:
            return True, str(claims.get("sub") or "") or None
        creds = basic_credentials(request)
        if creds is None:
            return True, None
        if self.users is not None and await self.users.verify(*creds):
            return True, creds[0]
        return False, None

    async def may_pull(self, request: web.Request, name: str) -> bool:
        ok, account = await self._account(request)
        allowed = self.rules.allowed(account, "repository", name)
        return ok and ("pull" in allowed or "*" in allowed)

    # token endpoint -------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        if self.key is None:
            return []
        return [web.get(TOKEN_PATH, self.issue)]

    async def issue(self, request: web.Request) -> web.StreamResponse:
        creds = basic_credentials(request)
        account: str | None = None
        if creds is not None:
            if self.users is None or not await self.users.verify(*creds):
                body = ec.UNAUTHORIZED.body("invalid username or password")
                return web.json_response(body, status=401, headers={"WWW-Authenticate": 'Basic realm="token"'})
            account = creds[0]
        service = request.query.get("service", self.config.service)
        if service != self.config.service:
            return web.json_response(ec.DENIED.body(f"unknown service {service!r}"), status=400)
        access = []
        for text in request.query.getall("scope", []):
            for item in text.split(" "):
                scope = parse_scope(item)
                if scope is None:
                    continue
                allowed = self.rules.allowed(account, scope.type, scope.name)
                actions = sorted(scope.actions) if "*" in allowed else sorted(scope.actions & allowed)
                access.append({"type": scope.type, "name": scope.name, "actions": actions})
        return web.json_response(self._sign(account, access))

    def _sign(self, account: str | None, access: list[dict[str, Any]]) -> dict[str, Any]:
        assert self.key is not None
        now = int(time.time())
        claims = {
            "iss": self.config.issuer,
            "sub": account or "",
            "aud": self.config.service,
            "exp": now + int(self.config.expiration),
            "nbf": now - 1,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        token = jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": self.kid})
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        return {"token": token, "access_token": token, "expires_in": int(self.config.expiration), "issued_at": issued}


def _bundle_keys(path: str) -> list[Any]:
    with open(path, "rb") as f:
        data = f.read()
    keys = []
    for block in data.split(b"-----END CERTIFICATE-----"):
        if b"-----BEGIN CERTIFICATE-----" in block:
            cert = x509.load_pem_x509_certificate(block + b"-----END CERTIFICATE-----\n")
            keys.append(cert.public_key())
    return keys


