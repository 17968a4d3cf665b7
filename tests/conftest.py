"""Shared fixtures. Peer-tool fixtures (dockerd, distribution, skopeo, podman) live in tests/peers.py."""

from __future__ import annotations

pytest_plugins = ["peers"]
