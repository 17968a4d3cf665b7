"""Registry authentication: none, htpasswd (Basic) or Docker token auth (Bearer JWT)."""

from __future__ import annotations

from strata.server.auth.base import Authenticator, NoAuth, Scope

__all__ = ["Authenticator", "NoAuth", "Scope"]
