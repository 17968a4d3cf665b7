"""Who a UI visitor is and what they may do: the registry's own users and access rules.

The UI signs people in against the registry's htpasswd file (``auth.htpasswd``, or the built-in token
server's ``auth.token.htpasswd``) and grants exactly what the API would grant the same account:
with htpasswd auth every signed-in user may do everything and an anonymous visitor nothing; with the
token server its access rules decide per repository; with no auth everyone may do everything.
Anything else (an external token server, an authenticator this module does not know) grants nothing:
the UI never fails open.
"""

from __future__ import annotations

from strata.server.auth.access import AccessRules
from strata.server.auth.base import Authenticator, NoAuth
from strata.server.auth.htpasswd import HtpasswdAuth, HtpasswdFile

__all__ = ["ALL", "actions_for", "can_sign_in", "password_fingerprint", "verify_password"]

ALL = frozenset({"pull", "push", "delete"})
NONE: frozenset[str] = frozenset()


def _users(auth: Authenticator) -> HtpasswdFile | None:
    users = getattr(auth, "users", None)
    return users if isinstance(users, HtpasswdFile) else None


def can_sign_in(auth: Authenticator) -> bool:
    return _users(auth) is not None


async def verify_password(auth: Authenticator, user: str, password: str) -> bool:
    users = _users(auth)
    return users is not None and bool(user) and await users.verify(user, password)


def password_fingerprint(auth: Authenticator, user: str) -> bytes | None:
    """The user's current htpasswd hash: a session ends when it changes or the user is removed."""
    users = _users(auth)
    return users.hash_of(user) if users is not None else None


def actions_for(auth: Authenticator, account: str | None, name: str) -> frozenset[str]:
    """The actions ``account`` (None: anonymous) may take on repository ``name``."""
    if type(auth) is NoAuth:
        return ALL
    if isinstance(auth, HtpasswdAuth):
        return ALL if account is not None else NONE
    rules = getattr(auth, "rules", None)
    if isinstance(rules, AccessRules) and _users(auth) is not None:
        granted = rules.allowed(account, "repository", name)
        return ALL if "*" in granted else frozenset(granted & ALL)
    return NONE
