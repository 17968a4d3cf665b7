"""A build's options and each stage's state: its image, its running config, its build args (Docker's
BuildArgs: declared ARGs, ``--build-arg`` overrides, meta ARGs before the first FROM, the proxy args)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from strata.digest import Digest
from strata.errors import StrataError

__all__ = ["DEFAULT_PATH", "PREDEFINED_ARGS", "BuildArgs", "BuildError", "BuildOptions", "Stage"]


class BuildError(StrataError):
    """A failed step (``The command '…' returned a non-zero code: N`` exits with N)."""

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ["/bin/sh", "-c"]
PREDEFINED_ARGS = frozenset({
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
    "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
})  # fmt: skip


@dataclass
class BuildOptions:
    context: str = "."  # a directory, or "-" for a tar on stdin
    dockerfile: str | None = None  # a path; "-" reads it from stdin
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str | None] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    pull: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    quiet: bool = False
    network: str = "default"
    platform: str | None = None  # --platform: what a pull fetches
    secrets: dict[str, str] = field(default_factory=dict)  # --secret: id -> file, for RUN --mount=type=secret
    ssh: dict[str, list[str]] = field(default_factory=dict)  # --ssh: id -> agent socket or keys, type=ssh


@dataclass
class BuildArgs:
    """The ``--build-arg`` values and what the Dockerfile declared (meta: before the first FROM)."""

    options: dict[str, str | None]
    meta: dict[str, str | None] = field(default_factory=dict)
    referenced: set[str] = field(default_factory=set)

    def value(self, key: str, default: str | None) -> str | None:
        given = self.options.get(key)
        if given is not None:
            return given
        if default is None:
            return self.meta.get(key)
        return default

    def unused(self) -> list[str]:
        return sorted(k for k in self.options if k not in self.referenced and k not in PREDEFINED_ARGS)


@dataclass
class Stage:
    name: str  # lower-cased AS name, or its index
    image_id: Digest | None  # None: scratch, nothing yet
    config: dict[str, Any]  # the running container config (Docker's runConfig)
    doc: dict[str, Any] | None  # the current image's config document
    args: BuildArgs
    declared: dict[str, str | None] = field(default_factory=dict)  # ARGs of this stage (defaults)
    cmd_set: bool = False
    author: str = ""

    def shell(self) -> list[str]:
        return list(self.config.get("Shell") or DEFAULT_SHELL)

    def allowed_args(self) -> dict[str, str]:
        """Declared ARGs and given proxy args that have a value (Docker's GetAllAllowed)."""
        out: dict[str, str] = {}
        for key, default in self.declared.items():
            value = self.args.value(key, default)
            if value is not None:
                out[key] = value
        for key in PREDEFINED_ARGS:
            given = self.args.options.get(key)
            if given is not None and key not in out:
                out[key] = given
        return out

    def run_args(self) -> list[str]:
        """``KEY=VALUE`` of the allowed args an ENV does not override (Docker's FilterAllowed)."""
        env_keys = {e.partition("=")[0] for e in self.config.get("Env") or []}
        return [f"{k}={v}" for k, v in self.allowed_args().items() if k not in env_keys]

    def expand_env(self) -> list[str]:
        """What ``$VAR`` sees in instructions: the config's Env first, then the build args."""
        return [*(self.config.get("Env") or []), *self.run_args()]

    def history_args(self) -> list[str]:
        """RUN's ``|N K=V`` prefix: proxy args only when declared, sorted."""
        return sorted(a for a in self.run_args() if a.partition("=")[0] in self.declared)

    def copy_config(self) -> dict[str, Any]:
        return copy.deepcopy(self.config)
