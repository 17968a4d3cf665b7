"""Rootless strata, as Podman does it: an unprivileged user's commands run in a user namespace (and a
mount namespace of its own) mapped from the user's ``/etc/subuid``/``/etc/subgid`` ranges through
``newuidmap``/``newgidmap``, so layers unpack with the owners the image says (container root is the user,
uid N > 0 is the N-th subordinate uid).

``idmap`` reads the ranges and words what is missing; ``userns`` creates the namespace and runs a
command in it; ``is_rootless`` (here) is the one check of whether strata runs for such a user. Both import only the base layer, and nothing here prints or exits.
"""

from __future__ import annotations

import os

__all__ = ["ENV_MARKER", "is_rootless"]

ENV_MARKER = "_STRATA_USERNS"  # set in the namespace's environment: "already inside, do not re-enter"


def is_rootless() -> bool:
    """Whether strata works for an unprivileged user: not root, or root only of strata's user namespace
    (``ENV_MARKER`` in the environment), which is still that user on the host. The store's modes and the
    container's networking ask this one question."""
    return os.geteuid() != 0 or ENV_MARKER in os.environ
