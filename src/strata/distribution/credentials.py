"""Registry logins kept in Docker's ``config.json``, so docker, podman, skopeo and strata share them.

The file is ``$DOCKER_CONFIG/config.json`` (default ``~/.docker/config.json``). Credentials live in
``auths[<server>].auth`` (base64 of ``user:password``; ``identitytoken`` for OAuth refresh tokens) unless a
credential helper is configured: ``credHelpers[<server>]`` for one registry or ``credsStore`` for all, run as
``docker-credential-<name> get|store|erase`` with the helper protocol (server URL or a JSON
``{"ServerURL", "Username", "Secret"}`` on stdin, JSON on stdout; ``Username == "<token>"`` marks an
identity token). Docker Hub's key is ``https://index.docker.io/v1/``.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from strata.atomicfile import write_bytes_atomic
from strata.distribution.hosts import DOCKER_HUB, normalize_host
from strata.errors import StrataError

__all__ = [
    "DOCKER_HUB_KEY",
    "CredentialHelperError",
    "Credentials",
    "config_path",
    "erase_credentials",
    "get_credentials",
    "server_key",
    "store_credentials",
]

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_TOKEN_USER = "<token>"
_NOT_FOUND = "credentials not found in native keychain"


class CredentialHelperError(StrataError):
    """A docker-credential-* helper failed."""


class _NoCredentials(CredentialHelperError):
    """The helper holds nothing for this server (its "credentials not found" answer)."""


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""

    def __bool__(self) -> bool:
        return bool(self.username or self.password or self.identity_token)


def config_dir() -> Path:
    env = os.environ.get("DOCKER_CONFIG")
    return Path(env) if env else Path.home() / ".docker"


def config_path() -> Path:
    return config_dir() / "config.json"


def server_key(registry: str) -> str:
    """The key Docker uses in ``auths`` for a registry name (``docker.io`` → Hub's v1 URL)."""
    host = normalize_host(registry)
    return DOCKER_HUB_KEY if host == DOCKER_HUB else host


def _key_host(key: str) -> str:
    """Docker's ConvertToHostname: strip scheme and path from an ``auths`` key."""
    k = key
    if "://" in k:
        k = urlsplit(k).netloc
    return normalize_host(k.split("/", 1)[0])


def _load() -> dict[str, Any]:
    try:
        data = json.loads(config_path().read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise StrataError(f"loading config file {config_path()}: {e}") from None
    return data if isinstance(data, dict) else {}


def _save(data: dict[str, Any]) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_bytes_atomic(path, json.dumps(data, indent="\t").encode(), mode=0o600)


def _helper_for(data: dict[str, Any], key: str) -> str | None:
    helpers = data.get("credHelpers")
    host = _key_host(key)
    if isinstance(helpers, dict):
        for k, v in helpers.items():
            if _key_host(str(k)) == host and v:
                return str(v)
    store = data.get("credsStore")
    return str(store) if store else None


_DOING = {"get": "getting", "store": "storing", "erase": "erasing"}


def _run_helper(name: str, action: str, payload: str) -> str:
    prog = f"docker-credential-{name}"
    doing = _DOING.get(action, action)
    try:
        proc = subprocess.run([prog, action], input=payload, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise CredentialHelperError(
            f'error {doing} credentials - err: exec: "{prog}": executable file not found in $PATH, out: ``'
        ) from None
    except subprocess.TimeoutExpired:
        raise CredentialHelperError(f"error {doing} credentials - err: {prog} timed out") from None
    if proc.returncode != 0:
        out = (proc.stdout or proc.stderr).strip()
        if _NOT_FOUND in out:
            raise _NoCredentials(out)
        raise CredentialHelperError(f"error {doing} credentials - err: exit status {proc.returncode}, out: `{out}`")
    return proc.stdout


def _from_entry(entry: Any) -> Credentials:
    if not isinstance(entry, dict):
        return Credentials()
    user, password = str(entry.get("username") or ""), str(entry.get("password") or "")
    auth = entry.get("auth")
    if auth:
        try:
            decoded = base64.b64decode(str(auth)).decode()
        except (ValueError, UnicodeDecodeError):
            raise StrataError("invalid auth configuration file") from None
        user, _, password = decoded.partition(":")
    return Credentials(user, password, str(entry.get("identitytoken") or ""))


def get_credentials(registry: str) -> Credentials:
    """The stored login for ``registry`` (empty ``Credentials`` when there is none)."""
    data = _load()
    key = server_key(registry)
    helper = _helper_for(data, key)
    if helper:
        try:
            out = _run_helper(helper, "get", key)
        except _NoCredentials:
            return Credentials()
        try:
            obj = json.loads(out)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            raise CredentialHelperError(f"error getting credentials - invalid helper output: {out!r}")
        user, secret = str(obj.get("Username") or ""), str(obj.get("Secret") or "")
        if user == _TOKEN_USER:
            return Credentials(identity_token=secret)
        return Credentials(user, secret)
    auths = data.get("auths")
    if not isinstance(auths, dict):
        return Credentials()
    if key in auths:
        return _from_entry(auths[key])
    host = _key_host(key)
    for k, entry in auths.items():
        if _key_host(str(k)) == host:
            return _from_entry(entry)
    return Credentials()


def store_credentials(registry: str, creds: Credentials) -> bool:
    """Save a login the way ``docker login`` does (helper if configured, else base64 in ``auths``).

    An identity token is kept instead of the password (``identitytoken``, the password left out).
    True when a password went into config.json itself (Docker then warns that it is unencrypted)."""
    data = _load()
    key = server_key(registry)
    auths = data.setdefault("auths", {})
    if not isinstance(auths, dict):
        auths = data["auths"] = {}
    helper = _helper_for(data, key)
    if helper:
        user, secret = creds.username, creds.password
        if creds.identity_token:
            user, secret = _TOKEN_USER, creds.identity_token
        _run_helper(helper, "store", json.dumps({"ServerURL": key, "Username": user, "Secret": secret}))
        auths[key] = {}
        plaintext = False
    else:
        entry: dict[str, str] = {}
        if creds.identity_token:
            entry["identitytoken"] = creds.identity_token
            entry["auth"] = base64.b64encode(f"{creds.username}:".encode()).decode()
        else:
            entry["auth"] = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        auths[key] = entry
        plaintext = not creds.identity_token and bool(creds.password)
    _save(data)
    return plaintext


def erase_credentials(registry: str) -> bool:
    """Forget the login for ``registry``; False when there was none in the file."""
    data = _load()
    key = server_key(registry)
    auths = data.get("auths")
    found = False
    if isinstance(auths, dict):
        host = _key_host(key)
        for k in [k for k in auths if _key_host(str(k)) == host]:
            del auths[k]
            found = True
    helper = _helper_for(data, key)
    if helper:
        try:
            _run_helper(helper, "erase", key)
            found = True
        except _NoCredentials:
            pass
    if found:
        _save(data)
    return found
