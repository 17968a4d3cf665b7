"""Per-repository access rules for token auth, from a YAML access file.

::

    - account: alice          # a user, "*" (any signed-in user) or "anonymous"
      name: "alice/*"         # repository glob; "*" for all
      actions: [pull, push, delete]   # or ["*"]

Without a file every signed-in user may do everything; ``anonymouspull`` lets anyone pull.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import yaml

from strata.errors import StrataError

__all__ = ["ANONYMOUS", "AccessRules", "Rule"]

ANONYMOUS = "anonymous"
ALL_ACTIONS = frozenset({"pull", "push", "delete", "*"})


@dataclass(frozen=True)
class Rule:
    account: str
    name: str
    actions: frozenset[str]

    def matches(self, account: str | None, name: str) -> bool:
        who = account or ANONYMOUS
        ok = account is not None if self.account == "*" else self.account == who
        return ok and fnmatch.fnmatchcase(name, self.name)


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
        if isinstance(raw, dict):
            raw = raw.get("access", [])
        rules = []
        for item in raw:
            actions = item.get("actions", [])
            if isinstance(actions, str):
                actions = [a.strip() for a in actions.split(",")]
            rules.append(Rule(str(item.get("account", "*")), str(item.get("name", "*")), frozenset(actions)))
        return cls(rules, anonymous_pull)

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
