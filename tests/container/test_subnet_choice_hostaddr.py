"""A pool subnet is chosen as Docker's IPAM does (netutils FindAvailableNetwork): one overlapping a host
route or a host interface's address is skipped, for the default bridge and for ``network create``.

Runs in a private network namespace (``unshare -n``) so the host's interfaces are left alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from container_helpers import Strata

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare")


def _in_netns(s: Strata, script: str) -> str:
    """``script`` (sh, with $S as the strata command) in a new network namespace; its stdout."""
    strata = " ".join(s.argv())
    res = subprocess.run(["unshare", "-n", "sh", "-ec", script], env={**s.env, "S": strata},
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_a_down_interface_address_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"default-address-pools": [{"base": "10.99.0.0/24", "size": 26}]}))
    monkeypatch.setenv("STRATA_CONFIG", str(config))
    s = Strata(tmp_path / "root")
    # an interface that is down has its address but no route: Docker still skips its subnet
    out = _in_netns(s, """
        ip link add d0 type bridge
        ip addr add 10.99.0.5/26 dev d0
        ip link add d1 type bridge
        ip addr add 10.99.0.130/26 dev d1
        ip link set d1 up
        $S network create leftnet >/dev/null
        $S network inspect -f '{{(index .IPAM.Config 0).Subnet}}' bridge leftnet
    """)
    assert out.split() == ["10.99.0.64/26", "10.99.0.192/26"]


def test_pools_exhausted_by_host_addresses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"default-address-pools": [{"base": "10.98.0.0/24", "size": 25}]}))
    monkeypatch.setenv("STRATA_CONFIG", str(config))
    s = Strata(tmp_path / "root")
    out = _in_netns(s, """
        ip link add d0 type bridge
        ip addr add 10.98.0.200/25 dev d0
        $S network inspect -f '{{(index .IPAM.Config 0).Subnet}}' bridge
        $S network create leftnet2 2>&1 || echo "rc=$?"
    """)
    assert out.splitlines() == [
        "10.98.0.0/25",
        "Error: could not find an available, non-overlapping IPv4 address pool among the "
        "defaults to assign to the network",
        "rc=1",
    ]


def test_an_explicit_subnet_over_a_host_address_is_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Docker 20.10 creates a network with a --subnet a host route or address overlaps (checked against a
    private dockerd: ``network create --subnet`` of a host bridge's subnet exits 0)."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"default-address-pools": [{"base": "10.97.0.0/24", "size": 26}]}))
    monkeypatch.setenv("STRATA_CONFIG", str(config))
    s = Strata(tmp_path / "root")
    out = _in_netns(s, """
        ip link add d0 type bridge
        ip addr add 10.97.1.1/24 dev d0
        $S network create --subnet 10.97.1.0/24 mine >/dev/null
        $S network inspect -f '{{(index .IPAM.Config 0).Subnet}}' mine
    """)
    assert out == "10.97.1.0/24\n"
