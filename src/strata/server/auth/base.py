"""The authenticator interface, access scopes (``repository:<name>:pull,push``) and identities.

Every authorisation decision goes through one place, :meth:`Authenticator.identity`: it
authenticates a request once (the result is kept on the request, so a handler asking about thirty
repositories costs one password check) and returns an :class:`Identity` that knows what the
request was granted. :meth:`Authenticator.authorize` (the route's scopes, mount sources included)
and :meth:`Authenticator.may_pull` (catalog and search filtering, mounts) both ask that identity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from strata.distribution import errcodes as ec
from strata.server.handlers.base import APIError

__all__ = ["ALL", "Authenticator", "Grants", "Identity", "NoAuth", "Scope", "nothing", "parse_scope"]


@dataclass(frozen=True)
class Scope:
    type: str
    name: str
    actions: frozenset[str]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"


def parse_scope(text: str) -> Scope | None:
    """``repository:foo/bar:pull,push`` -> Scope; names may not contain ':' except a registry port."""
    try:
        rtype, rest = text.split(":", 1)
        name, actions = rest.rsplit(":", 1)
    except ValueError:
        return None
    acts = frozenset(a for a in actions.split(",") if a)
    if not rtype or not name or not acts:
        return None
    return Scope(rtype, name, acts)


Grants = Callable[[str, str], frozenset[str]]
"""``(resource type, name) -> actions`` granted (``"*"`` stands for every action)."""

ALL = frozenset({"*"})


def nothing(rtype: str, name: str) -> frozenset[str]:
    return frozenset()


def _everything(rtype: str, name: str) -> frozenset[str]:
    return ALL


@dataclass(frozen=True)
class Identity:
    """Who a request is and what it may do.

    ``authenticated``: the request carried credentials that checked out (the registry API needs
    that); ``rejected``: it carried credentials that did not (a wrong password, a bad token), and
    such a request is granted nothing, not even what anonymous users get. ``grants`` decides
    what the request may do; ``listing`` (default: the same) what catalog and search show it.
    """

    account: str | None
    authenticated: bool = False
    rejected: bool = False
    grants: Grants = nothing
    listing: Grants | None = None

    def allows(self, scope: Scope, *, listing: bool = False) -> bool:
        if self.rejected:
            return False
        grants = self.listing if listing and self.listing is not None else self.grants
        have = grants(scope.type, scope.name)
        return "*" in have or scope.actions <= have


EVERYONE = Identity(None, authenticated=True, grants=_everything)

_IDENTITY = web.RequestKey("strata_identity", Identity)


class Authenticator:
    """Decides who a request is and whether it may do what the scopes say.

    Subclasses implement :meth:`identify` (called at most once per request) and :meth:`challenge`;
    ``authorize`` returns the account name (None for anonymous) or raises ``APIError``
    (401 with a ``WWW-Authenticate`` challenge).
    """

    async def identify(self, request: web.Request) -> Identity:
        return EVERYONE

    def deny(self, request: web.Request, identity: Identity, scopes: list[Scope]) -> Exception:
        """The error answering a request whose identity does not cover ``scopes``."""
        return APIError(ec.DENIED, status=403)

    async def identity(self, request: web.Request) -> Identity:
        """The request's identity, authenticated once and remembered for the rest of the request."""
        known = request.get(_IDENTITY)
        if known is None:
            known = await self.identify(request)
            request[_IDENTITY] = known
        return known

    async def authorize(self, request: web.Request, scopes: list[Scope]) -> str | None:
        identity = await self.identity(request)
        if not identity.authenticated or not all(identity.allows(scope) for scope in scopes):
            raise self.deny(request, identity, scopes)
        return identity.account

    async def may_pull(self, request: web.Request, name: str) -> bool:
        """Whether the request may read repository ``name`` (catalog and search filtering, mounts)."""
        identity = await self.identity(request)
        return identity.allows(Scope("repository", name, frozenset({"pull"})), listing=True)

    def routes(self) -> list[web.RouteDef]:
        """Extra routes the authenticator serves (the token endpoint)."""
        return []


class NoAuth(Authenticator):
    pass
