"""The authenticator interface and access scopes (``repository:<name>:pull,push``)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

__all__ = ["Authenticator", "NoAuth", "Scope", "parse_scope"]


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


class Authenticator:
    """Decides who a request is and whether it may do what the scopes say.

    ``authorize`` returns the account name (None for anonymous) or raises ``APIError``
    (401 with a ``WWW-Authenticate`` challenge, or 403).
    """

    async def authorize(self, request: web.Request, scopes: list[Scope]) -> str | None:
        return None

    async def may_pull(self, request: web.Request, name: str) -> bool:
        """Whether the request may read repository ``name`` (catalog filtering, mounts)."""
        return True

    def routes(self) -> list[web.RouteDef]:
        """Extra routes the authenticator serves (the token endpoint)."""
        return []


class NoAuth(Authenticator):
    pass
