"""Per-repository access rules for token auth, from a YAML access file.

::

    - account: alice          # a user, "*" (any signed-in user) or "anonymous"
      name: "alice/*"         # repository glob; "*" for all
      actions: [pull, push, delete]   # or ["*"]

Without a file every signed-in user may do everything; ``anonymouspull`` lets anyone pull. A file
strata cannot read exactly as written (a misspelled key, a rule without ``account`` or ``name``, an
unknown action) is refused: a guessed default could grant every user what one was meant to have.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import yaml

from strata.errors import StrataError

__all__ = ["ANONYMOUS", "AccessRules", "Rule"]

ANONYMOUS = "anonymous"
ALL_ACTIONS = frozenset({"pull", "push", "delete", "*"})
_RULE_KEYS = ("account", "name", "actions")


@dataclass(frozen=True)
class Rule:
    account: str
    name: str
    actions: frozenset[str]

    def matches(self, account: str | None, name: str) -> bool:
        who = account or ANONYMOUS
        ok = account is not None if self.account == "*" else self.account == who
        return ok and fnmatch.fnmatchcase(name, self.name)


def _items(raw: object) -> list[object]:
    """The rules of a file that is a list, or a mapping with one ``access`` list."""
    if isinstance(raw, dict):
        unknown = [str(k) for k in raw if k != "access"]
        if unknown:
            raise ValueError(f'unknown key "{unknown[0]}" (the rules go under "access")')
        raw = raw.get("access") or []
    if not isinstance(raw, list):
        raise ValueError("not a list of rules")
    return raw


def _rule(item: object, index: int) -> Rule:
    """One rule, read exactly: every key known, account and name set, actions known."""
    where = f"rule {index + 1}"
    if not isinstance(item, dict):
        raise ValueError(f"{where}: not a mapping (account, name, actions)")
    for key in item:
        if key not in _RULE_KEYS:
            raise ValueError(f'{where}: unknown key "{key}"')
    for key in ("account", "name"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise ValueError(f'{where}: "{key}" must be set')
    actions = item.get("actions", [])
    if isinstance(actions, str):
        actions = [a.strip() for a in actions.split(",") if a.strip()]
    if not isinstance(actions, list):
        raise ValueError(f'{where}: "actions" must be a list')
    for action in actions:
        if action not in ALL_ACTIONS:
            raise ValueError(f'{where}: unknown action "{action}"')
    return Rule(item["account"], item["name"], frozenset(actions))


class AccessRules:
    def __init__(self, rules: list[Rule] | None, anonymous_pull: bool) -> None:
        self.rules = rules
        self.anonymous_pull = anonymous_pull

    @classmethod
    def load(cls, path: str | None, anonymous_pull: bool) -> AccessRules:
        if not path:
            return cls(None, anonymous_pull)
        try:
            with open(path, encoding="utf-8") as f:
                raw = yaml.safe_load(f) or []
        except (OSError, yaml.YAMLError) as e:
            raise StrataError(f"cannot read access file {path}: {e}")
        try:
            return cls([_rule(item, i) for i, item in enumerate(_items(raw))], anonymous_pull)
        except ValueError as e:
            raise StrataError(f"invalid access file {path}: {e}") from None

    def allowed(self, account: str | None, rtype: str, name: str) -> frozenset[str]:
        """The actions ``account`` (None = anonymous) may take on a resource."""
        granted: set[str] = set()
        if account is None and self.anonymous_pull and rtype == "repository":
            granted.add("pull")
        if rtype == "registry":
            if account is not None and name == "catalog":
                granted.add("*")
            return frozenset(granted)
        if self.rules is None:
            if account is not None:
                granted.update(ALL_ACTIONS)
            return frozenset(granted)
        for rule in self.rules:
            if rule.matches(account, name):
                granted.update(ALL_ACTIONS if "*" in rule.actions else rule.actions)
        return frozenset(granted)
