"""strata: a daemonless, Docker-compatible container image engine and private registry."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
