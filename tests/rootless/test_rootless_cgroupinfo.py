"""``info`` as a user whose cgroups are not delegated (this host: cgroup v1) says what Docker's rootless
daemon says: ``Cgroup Driver: none`` and its warning on stderr, naming the fix."""

from __future__ import annotations

import os

import pytest
from rootlesshelpers import User

from strata.rootless.cgroups import delegated_controllers

pytestmark = pytest.mark.timeout(600)


def test_info_names_no_cgroup_driver_and_warns(user: User) -> None:
    if delegated_controllers(user.uid):
        pytest.skip("the user's cgroups are delegated here")
    v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    fix = ("Systemd is required to enable cgroups in rootless-mode." if v2 else
           "To enable cgroups in rootless-mode, you need to boot the system in cgroup v2 mode.")
    warning = f"WARNING: Running in rootless-mode without cgroups. {fix}"
    done = user.strata("info")
    assert " Cgroup Driver: none" in done.stdout.splitlines()
    assert done.stderr == warning + "\n"
    formatted = user.strata("info", "--format", "{{.CgroupDriver}} {{json .Warnings}}")
    assert formatted.stdout == f'none ["{warning}"]\n' and formatted.stderr == ""
