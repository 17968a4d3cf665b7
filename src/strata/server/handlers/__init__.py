"""HTTP handlers of the registry API, one module per resource."""

from __future__ import annotations

__all__: list[str] = []
