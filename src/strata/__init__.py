"""strata: a daemonless, Docker-compatible container image engine and private registry.

As a library (see the README's "As a library")::

    import strata

    strata.pull("localhost:5000/team/app:1", root=Path("/tmp/store"), progress=print)
    strata.copy("docker://localhost:5000/team/app:1", "oci:/tmp/app-layout:1")
    strata.push("localhost:5000/team/app:1", root=Path("/tmp/store"))

Names resolve on first use, so ``import strata`` stays cheap. The copy engine below these verbs is
``strata.copier`` (``copy_image``, ``copy_index``).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing would double what `import strata` costs
if TYPE_CHECKING:
    from typing import Any

    from strata.api import LoginResult, PullResult, PushResult, copy, login, pull, pull_if_missing, push
    from strata.errors import StrataError
    from strata.image.spec import Platform
    from strata.transports.base import ProgressEvent, WriteResult

__version__ = "0.1.0"
__all__ = [
    "LoginResult",
    "Platform",
    "ProgressEvent",
    "PullResult",
    "PushResult",
    "StrataError",
    "WriteResult",
    "__version__",
    "copy",
    "login",
    "pull",
    "pull_if_missing",
    "push",
]

_API = {"LoginResult", "PullResult", "PushResult", "copy", "login", "pull", "pull_if_missing", "push"}
_TYPES = {"ProgressEvent", "WriteResult"}


def _home(name: str) -> Any:
    if name not in _API and name not in _TYPES and name not in ("StrataError", "Platform"):
        # ``from strata import <submodule>`` asks here first: answered without importing importlib
        raise AttributeError(f"module 'strata' has no attribute {name!r}")
    import importlib  # here: the console script starts without site, and --version needs no importlib

    if name in _API:
        return importlib.import_module("strata.api")
    if name in _TYPES:
        return importlib.import_module("strata.transports.base")
    if name == "StrataError":
        return importlib.import_module("strata.errors")
    if name == "Platform":
        return importlib.import_module("strata.image.spec")
    raise AttributeError(f"module 'strata' has no attribute {name!r}")


def __getattr__(name: str) -> Any:
    value = getattr(_home(name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
