"""Docker's default seccomp profile: common commands run, syscalls Docker refuses fail with EPERM,
``--security-opt seccomp=unconfined`` lifts it and a Docker-format profile file replaces it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from container_helpers import Strata

from strata.container.seccomp import DEFAULT_PROFILE, oci_seccomp
from strata.container.spec import DEFAULT_CAPS


def _allowed(seccomp: dict[str, object]) -> set[str]:
    names: set[str] = set()
    for rule in seccomp["syscalls"]:  # type: ignore[attr-defined]
        if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args"):
            names.update(rule["names"])
    return names


def test_default_profile_follows_capabilities() -> None:
    plain = oci_seccomp(DEFAULT_PROFILE, DEFAULT_CAPS, "x86_64")
    assert plain["defaultAction"] == "SCMP_ACT_ERRNO" and plain["defaultErrnoRet"] == 1
    assert plain["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    allowed = _allowed(plain)
    assert {"read", "execve", "chroot", "arch_prctl", "openat"} <= allowed
    assert not {"mount", "unshare", "keyctl", "add_key", "reboot", "init_module", "setns", "bpf"} & allowed
    clone = [r for r in plain["syscalls"] if r["names"] == ["clone"]]
    assert clone[0]["args"] == [{"index": 0, "value": 0x7E020000, "op": "SCMP_CMP_MASKED_EQ"}]
    admin = _allowed(oci_seccomp(DEFAULT_PROFILE, [*DEFAULT_CAPS, "CAP_SYS_ADMIN"], "x86_64"))
    assert {"mount", "unshare", "setns", "clone"} <= admin
    arm = oci_seccomp(DEFAULT_PROFILE, DEFAULT_CAPS, "aarch64")
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"] and "arch_prctl" not in _allowed(arm)


@pytest.mark.runtime
def test_seccomp_in_containers(strata: Strata, busybox_image: str, tmp_path: Path) -> None:
    script = ("echo hi; ls / >/dev/null && cat /etc/passwd >/dev/null && busybox --list >/dev/null && echo ok; "
              "grep Seccomp: /proc/self/status; unshare -U true 2>&1; echo userns=$?")
    out = strata("run", "--rm", busybox_image, "sh", "-c", script).stdout.splitlines()
    assert out == ["hi", "ok", "Seccomp:\t2", "unshare: unshare(0x10000000): Operation not permitted", "userns=1"]
    out = strata("run", "--rm", "--security-opt", "seccomp=unconfined", busybox_image, "sh", "-c", script)
    assert out.stdout.splitlines()[2:] == ["Seccomp:\t0", "userns=0"]
    # a Docker-format profile file: the default without mkdir
    profile = json.loads(json.dumps(DEFAULT_PROFILE))
    profile["syscalls"][0]["names"] = [n for n in profile["syscalls"][0]["names"] if n not in ("mkdir", "mkdirat")]
    (tmp_path / "p.json").write_text(json.dumps(profile, indent=2))
    strata("create", "--name", "prof", "--security-opt", f"seccomp={tmp_path / 'p.json'}", busybox_image,
           "sh", "-c", "mkdir /x 2>&1; echo mkdir=$?; touch /y && echo touched")
    (tmp_path / "p.json").unlink()  # kept inline in the container, as Docker's CLI does
    out = strata("start", "-a", "prof").stdout.splitlines()
    assert out == ["mkdir: can't create directory '/x': Operation not permitted", "mkdir=1", "touched"]
    opts = json.loads(strata("container", "inspect", "-f", "{{json .HostConfig.SecurityOpt}}", "prof").stdout)
    assert len(opts) == 1 and opts[0].startswith('seccomp={"defaultAction":"SCMP_ACT_ERRNO"')
    res = strata("run", "--rm", "--security-opt", "bogus", busybox_image, "true", check=False)
    assert (res.returncode, res.stderr) == (125, 'Error: Invalid --security-opt: "bogus"\n')
    res = strata("run", "--rm", "--security-opt", f"seccomp={tmp_path}/none.json", busybox_image, "true",
                 check=False)
    assert res.returncode == 125 and res.stderr == (
        f"Error: opening seccomp profile ({tmp_path}/none.json) failed: open {tmp_path}/none.json: no such file or directory\n"
    )
