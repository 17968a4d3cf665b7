"""Docker token auth: Bearer JWT checks on the registry and a built-in token endpoint.

The endpoint (``GET /auth/token?service=&scope=&account=``) authenticates with Basic credentials
from an htpasswd file (or anonymously), grants each requested action the access rules allow and
returns an ES256-signed JWT with distribution's claims (``iss``, ``sub``, ``aud``, ``exp``, ``nbf``,
``iat``, ``jti``, ``access``). ``offline_token=true`` (what ``docker login`` sends) adds a
``refresh_token``.

``POST /auth/token`` takes distribution's OAuth2 form (``application/x-www-form-urlencoded``):
``grant_type=password`` with ``username``/``password`` (plus ``access_type=offline`` for a refresh
token) or ``grant_type=refresh_token`` with ``refresh_token``; ``service``, ``scope`` (space
separated) and ``client_id`` as in the spec. It answers ``access_token``, ``scope``, ``expires_in``,
``issued_at`` (and ``refresh_token``). Refresh tokens are JWTs for a separate audience (never valid
at the registry), live ``auth.token.refreshexpiration`` (90 days), and stop working when the user
leaves the htpasswd file or changes password. Failures answer RFC 6749 ``error`` fields together
with the registry's ``errors`` list.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import tempfile
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
from strata.server.auth.base import Authenticator, Grants, Identity, Scope, nothing, parse_scope
from strata.server.auth.htpasswd import HtpasswdFile, basic_credentials
from strata.server.auth.origin import PublicOrigin
from strata.server.config import ConfigError, TokenConfig
from strata.server.handlers.base import APIError

__all__ = ["TOKEN_PATH", "TokenAuth", "load_or_create_key"]

TOKEN_PATH = "/auth/token"
_ALGS = ["ES256", "ES384", "RS256", "RS384", "RS512", "PS256"]


def load_or_create_key(path: str | None) -> crypto_ec.EllipticCurvePrivateKey:
    """The signing key from ``path``; created there (mode 0600) when missing. Creation is atomic and
    race-free: the key is written aside and linked into place, and a server that loses the race to
    another one starting at the same moment uses the winner's key."""
    if path and os.path.exists(path):
        return _load_key(path)
    key = crypto_ec.generate_private_key(crypto_ec.SECP256R1())
    if path:
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        tmp = ""
        try:
            fd, tmp = tempfile.mkstemp(prefix=".tmp-key-", dir=os.path.dirname(os.path.abspath(path)))
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                return _load_key(path)
        except OSError as e:
            raise ConfigError(f"unable to write token signing key {path}: {e.strerror}") from None
        finally:
            if tmp:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
    return key


def _load_key(path: str) -> crypto_ec.EllipticCurvePrivateKey:
    try:
        with open(path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
    except OSError as e:
        raise ConfigError(f"unable to read token signing key {path}: {e.strerror}") from None
    except (ValueError, TypeError) as e:
        raise ConfigError(f"invalid token signing key {path}: {e}") from None
    if not isinstance(key, crypto_ec.EllipticCurvePrivateKey):
        raise ConfigError(f"invalid token signing key {path}: must be an EC key")
    return key


def _key_id(public: Any) -> str:
    """libtrust-style key ID: base32 of the first 240 bits of the SPKI sha256, in 4-char groups."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i : i + 4] for i in range(0, 48, 4))


def _claim_grants(claims: dict[str, Any]) -> Grants:
    """What a token's ``access`` claim grants: exact resource names, as distribution reads them."""
    granted: dict[tuple[str, str], frozenset[str]] = {}
    for entry in claims.get("access") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("actions") or [], list):
            continue
        key = (str(entry.get("type")), str(entry.get("name")))
        granted[key] = granted.get(key, frozenset()) | frozenset(map(str, entry.get("actions") or []))
    return lambda rtype, name: granted.get((rtype, name), frozenset())


def _union(a: Grants, b: Grants) -> Grants:
    return lambda rtype, name: a(rtype, name) | b(rtype, name)


class TokenAuth(Authenticator):
    """Bearer tokens at the registry (from the built-in token server or one trusted through
    ``rootcertbundle``); the built-in token endpoint when ``builtin``.

    The registry API is authorised from the token's ``access`` claim alone. Listing (catalog and
    ``/v1/search``) may also show what the built-in server's access rules would grant the token's
    subject; an external token server's tokens show only what they grant.
    """

    def __init__(self, config: TokenConfig, origin: PublicOrigin | None = None) -> None:
        self.config = config
        self.origin = origin or PublicOrigin()
        self.key = load_or_create_key(config.signingkey) if config.builtin else None
        self.kid = _key_id(self.key.public_key()) if self.key is not None else ""
        self.bundle_keys: list[Any] = _bundle_keys(config.rootcertbundle) if config.rootcertbundle else []
        self.users = HtpasswdFile(config.htpasswd) if config.htpasswd else None
        self.rules = AccessRules.load(config.accessfile, config.anonymouspull)

    # registry side --------------------------------------------------------------------------

    def _realm(self, request: web.Request) -> str:
        return self.config.realm or self.origin.url(request) + TOKEN_PATH

    def _challenge(self, request: web.Request, scopes: list[Scope], error: str | None) -> dict[str, str]:
        parts = [f'realm="{self._realm(request)}"', f'service="{self.config.service}"']
        if scopes:
            parts.append(f'scope="{" ".join(str(s) for s in scopes)}"')
        if error:
            parts.append(f'error="{error}"')
        return {"WWW-Authenticate": "Bearer " + ",".join(parts)}

    def _decode(self, token: str, key: Any) -> dict[str, Any] | None:
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=_ALGS, audience=self.config.service, issuer=self.config.issuer,
                leeway=30, options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError:
            return None
        return claims

    def _rule_grants(self, account: str | None) -> Grants:
        if self.key is None:
            return nothing
        return lambda rtype, name: self.rules.allowed(account, rtype, name)

    def _bearer_identity(self, token: str) -> Identity:
        """A token signed by the built-in key, else by a key of the root certificate bundle."""
        if self.key is not None and (claims := self._decode(token, self.key.public_key())) is not None:
            account = str(claims.get("sub") or "") or None
            grants = _claim_grants(claims)
            return Identity(account, authenticated=True, grants=grants,
                            listing=_union(grants, self._rule_grants(account)))
        for key in self.bundle_keys:
            if (claims := self._decode(token, key)) is not None:
                return Identity(str(claims.get("sub") or "") or None, authenticated=True, grants=_claim_grants(claims))
        return Identity(None, rejected=True)

    async def identify(self, request: web.Request) -> Identity:
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            return self._bearer_identity(header[7:].strip())
        creds = basic_credentials(request)
        if creds is None:
            return Identity(None, grants=self._rule_grants(None))
        if self.key is not None and self.users is not None and await self.users.verify(*creds):
            # Basic credentials serve /v1/search only: the registry API needs a token
            return Identity(creds[0], grants=self._rule_grants(creds[0]))
        return Identity(None, rejected=True)

    def deny(self, request: web.Request, identity: Identity, scopes: list[Scope]) -> Exception:
        if not identity.authenticated:
            return APIError(ec.UNAUTHORIZED, headers=self._challenge(request, scopes, None))
        missing = [s for s in scopes if not identity.allows(s)]
        return APIError(
            ec.DENIED if identity.account else ec.UNAUTHORIZED,
            status=401,
            detail=[{"Type": s.type, "Name": s.name, "Action": a} for s in missing for a in sorted(s.actions)],
            headers=self._challenge(request, scopes, "insufficient_scope"),
        )

    # token endpoint -------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        if self.key is None:
            return []
        return [web.get(TOKEN_PATH, self.issue), web.post(TOKEN_PATH, self.issue_oauth)]

    def _grant(self, account: str | None, scope_texts: list[str]) -> list[dict[str, Any]]:
        """Each requested scope with the actions the access rules allow ``account``."""
        access = []
        for text in scope_texts:
            for item in text.split(" "):
                scope = parse_scope(item)
                if scope is None:
                    continue
                allowed = self.rules.allowed(account, scope.type, scope.name)
                actions = sorted(scope.actions) if "*" in allowed else sorted(scope.actions & allowed)
                access.append({"type": scope.type, "name": scope.name, "actions": actions})
        return access

    async def issue(self, request: web.Request) -> web.StreamResponse:
        """``GET``: Basic credentials (or none); ``offline_token=true`` adds a refresh token."""
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
        answer = self._sign(account, self._grant(account, request.query.getall("scope", [])))
        if account is not None and request.query.get("offline_token", "").lower() == "true":
            answer["refresh_token"] = self._refresh_token(account)
        return web.json_response(answer)

    async def issue_oauth(self, request: web.Request) -> web.StreamResponse:
        """``POST``: the OAuth2 form (``grant_type=password`` or ``refresh_token``)."""
        form = await request.post()
        field = {k: v for k, v in form.items() if isinstance(v, str)}
        service = field.get("service", self.config.service)
        if service != self.config.service:
            return _oauth_error(400, "invalid_request", f"unknown service {service!r}")
        grant = field.get("grant_type", "")
        if grant == "password":
            user, password = field.get("username", ""), field.get("password", "")
            if not user or self.users is None or not await self.users.verify(user, password):
                return _oauth_error(401, "invalid_grant", "invalid username or password")
            account = user
        elif grant == "refresh_token":
            found = self._refresh_account(field.get("refresh_token", ""))
            if found is None:
                return _oauth_error(401, "invalid_grant", "invalid or expired refresh token")
            account = found
        else:
            return _oauth_error(400, "unsupported_grant_type", f"unsupported grant_type {grant!r}")
        access = self._grant(account, [field.get("scope", "")])
        answer = self._sign(account, access)
        answer["scope"] = " ".join(
            f"{a['type']}:{a['name']}:{','.join(a['actions'])}" for a in access if a["actions"]
        )
        if grant == "password" and field.get("access_type") == "offline":
            answer["refresh_token"] = self._refresh_token(account)
        return web.json_response(answer)

    def _refresh_audience(self) -> str:
        return f"{self.config.service}#refresh"

    def _password_tag(self, account: str) -> str | None:
        """Changes when the user's password does, so a new password revokes old refresh tokens."""
        h = self.users.hash_of(account) if self.users is not None else None
        return hashlib.sha256(h).hexdigest()[:16] if h is not None else None

    def _refresh_token(self, account: str) -> str:
        assert self.key is not None
        now = int(time.time())
        claims = {
            "iss": self.config.issuer,
            "sub": account,
            "aud": self._refresh_audience(),
            "exp": now + int(self.config.refreshexpiration),
            "iat": now,
            "jti": uuid.uuid4().hex,
            "pwt": self._password_tag(account),
        }
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": self.kid})

    def _refresh_account(self, token: str) -> str | None:
        """The account a valid refresh token stands for (None if invalid, expired or revoked)."""
        if self.key is None or not token:
            return None
        try:
            claims = jwt.decode(
                token, self.key.public_key(), algorithms=["ES256"], audience=self._refresh_audience(),
                issuer=self.config.issuer, options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.PyJWTError:
            return None
        account = str(claims.get("sub") or "")
        tag = self._password_tag(account) if account else None
        if tag is None or claims.get("pwt") != tag:
            return None
        return account

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


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    """RFC 6749 section 5.2 fields, plus the registry error list Docker's client reads."""
    code = ec.UNAUTHORIZED if status == 401 else ec.DENIED
    body = {"error": error, "error_description": description, **code.body(description)}
    return web.json_response(body, status=status)


def _bundle_keys(path: str) -> list[Any]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigError(f"unable to open token auth root certificate bundle file {path!r}: {e.strerror}") from None
    keys = []
    for block in data.split(b"-----END CERTIFICATE-----"):
        if b"-----BEGIN CERTIFICATE-----" in block:
            try:
                cert = x509.load_pem_x509_certificate(block + b"-----END CERTIFICATE-----\n")
            except ValueError as e:
                raise ConfigError(f"unable to parse token auth root certificate bundle {path!r}: {e}") from None
            keys.append(cert.public_key())
    return keys


