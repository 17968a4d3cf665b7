"""``strata unshare [COMMAND...]`` (Podman's) and the rootless re-entry every store command goes through.

As an unprivileged user with subordinate id ranges, a command that touches the store joins the user's
rootless user + mount namespace (``strata.rootless.userns``) before it runs, as Podman's commands do.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from strata.errors import StrataError
from strata.rootless import ENV_MARKER

__all__ = ["IMAGE_ONLY", "OUTSIDE", "reenter", "register", "warn_rootless"]

# commands that never touch the local store: they run as the user, outside any namespace
OUTSIDE = frozenset({"registry", "login", "logout", "search", "version"})
# commands that work without the namespace (files owned by the user) when the user has no subordinate ids
IMAGE_ONLY = frozenset(
    {
        "images",
        "image",
        "tag",
        "history",
        "save",
        "load",
        "import",
        "rmi",
        "inspect",
        "pull",
        "push",
        "copy",
        "manifest",
    }
)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "unshare",
        help="Run a command in a modified user namespace",
        description="Run a command (default: $SHELL) as root of the rootless user namespace, "
        "with the user's /etc/subuid and /etc/subgid ranges mapped, as podman unshare does.",
    )
    p.add_argument(
        "command", nargs=argparse.REMAINDER, metavar="COMMAND", help="the command and its arguments"
    )
    p.set_defaults(func=_unshare)


def _unshare(args: argparse.Namespace, ctx: Any) -> int:
    if ENV_MARKER not in os.environ:  # as real root: nothing to unshare
        raise StrataError("please use unshare with rootless", exit_code=125)
    command = list(args.command) or [os.environ.get("SHELL") or "/bin/sh"]
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(command[0], command)
    except OSError as e:
        raise StrataError(
            f"{command[0]}: {e.strerror or e}", exit_code=127 if isinstance(e, FileNotFoundError) else 126
        ) from None


def reenter(args: argparse.Namespace, word: str | None) -> None:
    """As a non-root user outside a namespace: join (or create) the user's rootless namespace and go on
    there as its root, the store path fixed first (inside, the euid is 0 and ``/var/lib/strata`` would be
    the default). Stays outside when the command never touches the store, or when the user has no
    subordinate ids and the command is an image command; any other command then fails naming the fix."""
    if os.geteuid() == 0 or ENV_MARKER in os.environ or word in OUTSIDE or word is None:
        return
    from strata.rootless.idmap import RootlessError, user_maps
    from strata.rootless.userns import enter
    from strata.store.root import default_root

    root = os.path.abspath(args.root or os.environ.get("STRATA_ROOT") or str(default_root()))
    try:
        enter(user_maps)
    except RootlessError:
        if word not in IMAGE_ONLY:
            raise  # a container needs the namespace: say what is missing and how to fix it
        return  # as before rootless support: image commands with every file owned by the user
    os.environ["STRATA_ROOT"] = root
    os.environ[ENV_MARKER] = "1"


def warn_rootless(ctx: Any, host_config: dict[str, Any]) -> None:
    """Docker's ``WARNING:`` lines (stderr) for the resource limits a rootless container runs without."""
    from strata.rootless.mode import in_user_namespace

    if not in_user_namespace():
        return
    from strata.rootless.cgroups import discarded_limits

    for text in discarded_limits(host_config):
        print(f"WARNING: {text}", file=ctx.err)
