"""Rootless strata, as Podman does it: an unprivileged user's commands run in a user namespace (and a
mount namespace of its own) mapped from the user's ``/etc/subuid``/``/etc/subgid`` ranges through
``newuidmap``/``newgidmap``, so layers unpack with the owners the image says (container root is the user,
uid N > 0 is the N-th subordinate uid).

``idmap`` reads the ranges and words what is missing; ``userns`` creates the namespace and runs a
command in it. Both import only the base layer, and nothing here prints or exits.
"""

from __future__ import annotations

__all__ = ["ENV_MARKER"]

ENV_MARKER = "_STRATA_USERNS"  # set in the namespace's environment: "already inside, do not re-enter"
