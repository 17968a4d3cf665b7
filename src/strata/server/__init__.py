"""strata's registry server: an OCI Distribution Spec v1.1 registry on aiohttp."""

from __future__ import annotations

__all__: list[str] = []
