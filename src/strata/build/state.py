"""A build's options and each stage's state: its image, its running config, its build args (Docker's
BuildArgs: declared ARGs, ``--build-arg`` overrides, meta ARGs before the first FROM, the proxy args)."""

from __future__ import annotations

import copy
from collections.abc import Callable

from strata.digest import Digest
from strata.errors import StrataError

TYPE_CHECKING = False  # not typing's: importing typing costs a cached build's start-up
if TYPE_CHECKING:
    from typing import Any

    from strata.build.hostopts import StepHost

__all__ = ["DEFAULT_PATH", "PREDEFINED_ARGS", "BuildArgs", "BuildError", "BuildOptions", "Stage"]


class BuildError(StrataError):
    """A failed step (``The command '…' returned a non-zero code: N`` exits with N)."""

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ["/bin/sh", "-c"]
PREDEFINED_ARGS = frozenset({
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
    "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
})  # fmt: skip


class BuildOptions:
    """What ``strata build`` was asked (a plain class: ``dataclasses`` costs a cached rebuild its
    import of ``inspect``)."""

    def __init__(
        self, context: str = ".", dockerfile: str | None = None, tags: list[str] | None = None,
        build_args: dict[str, str | None] | None = None, target: str | None = None, no_cache: bool = False,
        pull: bool = False, labels: dict[str, str] | None = None, quiet: bool = False, network: str = "default",
        platform: str | None = None, secrets: dict[str, str] | None = None,
        ssh: dict[str, list[str]] | None = None, host: StepHost | None = None, cache_from: list[str] | None = None,
        security_opt: list[str] | None = None, isolation: str = "", compress: bool = False,
    ) -> None:  # fmt: skip
        self.context = context  # a directory, or "-" for a tar on stdin
        self.dockerfile = dockerfile  # a path; "-" reads it from stdin
        self.tags = tags if tags is not None else []
        self.build_args = build_args if build_args is not None else {}
        self.target = target
        self.no_cache = no_cache
        self.pull = pull
        self.labels = labels if labels is not None else {}
        self.quiet = quiet
        self.network = network
        self.platform = platform  # --platform: what a pull fetches
        self.secrets = secrets if secrets is not None else {}  # --secret: id -> file, for RUN --mount=type=secret
        self.ssh = ssh if ssh is not None else {}  # --ssh: id -> agent socket or keys, type=ssh
        self.host = host  # the step containers' limits and --add-host (None: none given)
        self.cache_from = cache_from if cache_from is not None else []  # --cache-from: images' history as cache
        self.security_opt = security_opt if security_opt is not None else []  # refused, as the daemon does
        self.isolation = isolation  # "" or "default" (Linux has no other)
        self.compress = compress  # --compress: the Sending line counts the context gzipped


class BuildArgs:
    """The ``--build-arg`` values and what the Dockerfile declared (meta: before the first FROM)."""

    def __init__(
        self, options: dict[str, str | None], meta: dict[str, str | None] | None = None,
        referenced: set[str] | None = None,
    ) -> None:  # fmt: skip
        self.options = options
        self.meta: dict[str, str | None] = meta if meta is not None else {}
        self.referenced: set[str] = referenced if referenced is not None else set()

    def value(self, key: str, default: str | None) -> str | None:
        given = self.options.get(key)
        if given is not None:
            return given
        if default is None:
            return self.meta.get(key)
        return default

    def unused(self) -> list[str]:
        return sorted(k for k in self.options if k not in self.referenced and k not in PREDEFINED_ARGS)


class Stage:
    def __init__(
        self, name: str, image_id: Digest | None, config: dict[str, Any], doc: dict[str, Any] | None,
        args: BuildArgs, declared: dict[str, str | None] | None = None, cmd_set: bool = False, author: str = "",
    ) -> None:  # fmt: skip
        self.name = name  # lower-cased AS name, or its index
        self.image_id = image_id  # None: scratch, nothing yet
        self.config = config  # the running container config (Docker's runConfig)
        self._doc = doc  # the current image's config document
        self._load_doc: Callable[[], dict[str, Any]] | None = None
        self.args = args
        self.declared: dict[str, str | None] = declared if declared is not None else {}  # ARGs of this stage
        self.cmd_set = cmd_set
        self.author = author

    @property
    def doc(self) -> dict[str, Any] | None:
        """The config document of the stage's image, read when first asked for (a cached step's
        image is only read if a later step builds on it)."""
        if self._load_doc is not None:
            self._doc, self._load_doc = self._load_doc(), None
        return self._doc

    @doc.setter
    def doc(self, value: dict[str, Any] | None) -> None:
        self._doc, self._load_doc = value, None

    def doc_from(self, load: Callable[[], dict[str, Any]]) -> None:
        self._load_doc = load

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
