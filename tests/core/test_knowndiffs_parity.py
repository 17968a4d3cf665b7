"""The known differences from Docker 20.10 the closing notes listed, side by side with a private dockerd:
``save -o``/``export -o`` onto a directory, ``system df -v --format``, ``update``'s runtime errors,
the ``RestartPolicy`` methods in ``inspect -f``, detached ``exec`` events."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import peers

pytestmark = pytest.mark.peers


@pytest.fixture
def strata(root: Path) -> Any:
    """``strata ARGS`` in a process of its own against the test's store (``cwd``: where it runs)."""

    def run(*args: str, check: bool = True, cwd: Path | None = None,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "strata", *args], capture_output=True, text=True,
                              env=dict(os.environ, STRATA_ROOT=str(root)), cwd=cwd, input=input, timeout=300)
        if check and proc.returncode != 0:
            raise AssertionError(f"strata {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc

    return run


def _image(strata: Any, dockerd: Any, tmp_path: Path, name: str) -> str:
    """The same small busybox image, imported into both under ``name``."""
    tar = peers.busybox_rootfs_tar(tmp_path / "rootfs.tar", extra_files={"etc/kd-id": uuid.uuid4().hex.encode()})
    dockerd.run("import", "-c", 'CMD ["/bin/sh"]', str(tar), name)
    strata("import", "-c", 'CMD ["/bin/sh"]', str(tar), name)
    return name


def _temp_levelled(text: str) -> str:
    return re.sub(r"\.docker_temp_[0-9]+", ".docker_temp_N", re.sub(r"^(Error: )", "", text, flags=re.M))


@pytest.mark.parametrize("command", ["save", "export"])
def test_output_onto_a_directory_is_gos_rename_error(strata: Any, dockerd: Any, tmp_path: Path,
                                                     command: str) -> None:
    name = _image(strata, dockerd, tmp_path, f"kd/save-dir-{uuid.uuid4().hex[:8]}:1")
    (tmp_path / "out").mkdir()
    cname = f"kd-exp-{uuid.uuid4().hex[:8]}"
    if command == "export":
        dockerd.run("create", "--name", cname, name, "true")
        strata("create", "--name", cname, name, "true")
    try:
        for out in ("out", "./out/", str(tmp_path / "out"), "out/../out"):
            args = (command, "-o", out, cname if command == "export" else name)
            d = dockerd.run(*args, check=False, cwd=tmp_path)
            s = strata(*args, check=False, cwd=tmp_path)
            assert s.returncode == d.returncode == 1, (out, s.stderr)
            assert _temp_levelled(s.stderr) == _temp_levelled(d.stderr), out
            assert "rename " in s.stderr and ": file exists" in s.stderr
        assert not [p for p in [*tmp_path.iterdir(), *(tmp_path / "out").iterdir()]
                    if p.name.startswith(".docker_temp_")]  # nothing left behind
        assert list((tmp_path / "out").iterdir()) == []
    finally:
        if command == "export":
            dockerd.run("rm", cname, check=False)
            strata("rm", cname, check=False)


_POLICY_TEMPLATE = ("{{.HostConfig.RestartPolicy.IsNone}} {{.HostConfig.RestartPolicy.IsAlways}} "
                    "{{.HostConfig.RestartPolicy.IsOnFailure}} {{.HostConfig.RestartPolicy.IsUnlessStopped}} "
                    "{{.HostConfig.RestartPolicy.IsSame .HostConfig.RestartPolicy}} {{.HostConfig.RestartPolicy}} "
                    "{{json .HostConfig.RestartPolicy}} {{with .HostConfig.RestartPolicy}}{{.IsOnFailure}}{{end}}")


@pytest.mark.parametrize("policy", ["no", "on-failure:3", "always", "unless-stopped"])
def test_restart_policy_methods_in_inspect_templates(strata: Any, dockerd: Any, tmp_path: Path, policy: str) -> None:
    name = _image(strata, dockerd, tmp_path, f"kd/policy-{uuid.uuid4().hex[:8]}:1")
    cname = f"kd-pol-{uuid.uuid4().hex[:8]}"
    dockerd.run("create", "--name", cname, "--restart", policy, name, "true")
    strata("create", "--name", cname, "--restart", policy, name, "true")
    try:
        for fmt in (_POLICY_TEMPLATE, "{{.HostConfig.RestartPolicy.IsNone 1}}", "{{.HostConfig.RestartPolicy.Nope}}"):
            d = dockerd.run("inspect", "-f", fmt, cname, check=False)
            s = strata("inspect", "-f", fmt, cname, check=False)
            assert (s.returncode, s.stdout, _temp_levelled(s.stderr)) == (d.returncode, d.stdout, d.stderr), fmt
        assert strata("inspect", "-f", _POLICY_TEMPLATE, cname).stdout.count("true") >= 2
    finally:
        dockerd.run("rm", cname, check=False)
        strata("rm", cname, check=False)


def _daemon_levelled(proc: subprocess.CompletedProcess[str], cid: str) -> tuple[int, str]:
    """(exit code, stderr) with the ID, the cgroup directory and the error prefixes levelled."""
    text = proc.stderr.replace(cid, "<ID>") if cid else proc.stderr
    text = re.sub(r"write /sys/fs/cgroup/\S+/(memory\.[a-z_.]+)", r"write CG/\1", text)
    return proc.returncode, re.sub(r"^(Error response from daemon: |Error: )", "", text, flags=re.M)


def test_update_runtime_refusals_in_dockers_words(strata: Any, dockerd: Any, tmp_path: Path) -> None:
    name = _image(strata, dockerd, tmp_path, f"kd/update-{uuid.uuid4().hex[:8]}:1")
    cname = f"kd-upd-{uuid.uuid4().hex[:8]}"
    dockerd.run("run", "-d", "--name", cname, name, "sleep", "600")
    strata("run", "-d", "--name", cname, name, "sleep", "600")
    ids = {"d": dockerd.run("inspect", "-f", "{{.Id}}", cname).stdout.strip(),
           "s": strata("inspect", "-f", "{{.Id}}", cname).stdout.strip()}
    cases = [("--cpu-shares", "1")]
    v1 = Path("/sys/fs/cgroup/memory")
    if not v1.is_dir() or (v1 / "memory.memsw.limit_in_bytes").exists():
        cases.append(("--memory-swap", "100m"))  # without --memory: the runtime refuses it (memsw < memory)
    try:
        for flag, value in cases:
            d = _daemon_levelled(dockerd.run("update", flag, value, cname, check=False), ids["d"])
            s = _daemon_levelled(strata("update", flag, value, cname, check=False), ids["s"])
            assert s == d, flag
            assert s[0] == 1 and s[1].endswith("\n: unknown\n"), s
        fmt = "{{.HostConfig.CpuShares}} {{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}"
        assert strata("inspect", "-f", fmt, cname).stdout == dockerd.run("inspect", "-f", fmt, cname).stdout
    finally:
        dockerd.run("rm", "-f", cname, check=False)
        strata("rm", "-f", cname, check=False)


def test_swap_limit_given_by_update_is_refused_at_start(strata: Any, dockerd: Any, tmp_path: Path) -> None:
    name = _image(strata, dockerd, tmp_path, f"kd/update-{uuid.uuid4().hex[:8]}:1")
    cname = f"kd-upd-{uuid.uuid4().hex[:8]}"
    dockerd.run("create", "--name", cname, name, "true")
    strata("create", "--name", cname, name, "true")
    try:
        for args in (("update", "--memory-swap", "100m", cname), ("start", cname)):
            d, s = dockerd.run(*args, check=False), strata(*args, check=False)
            assert _daemon_levelled(s, "") == _daemon_levelled(d, ""), args
        assert "You should always set the Memory limit when using Memoryswap limit" in s.stderr
    finally:
        dockerd.run("rm", "-f", cname, check=False)
        strata("rm", "-f", cname, check=False)


def _exec_events(run: Any, cname: str, since: int, want: int) -> list[str]:
    """The container's exec events since ``since`` (polled until ``want`` of them, at most 60 s)."""
    deadline = time.monotonic() + 60
    while True:
        until = str(int(time.time()) + 1)
        out = run("events", "--since", str(since), "--until", until, "--filter", f"container={cname}",
                  "--format", "{{.Action}} {{.Actor.Attributes.exitCode}}").stdout
        lines = [line for line in out.splitlines() if line.startswith("exec_")]
        if len(lines) >= want or time.monotonic() > deadline:
            return lines
        time.sleep(0.5)


def test_detached_exec_records_exec_die_with_its_code(strata: Any, dockerd: Any, tmp_path: Path) -> None:
    name = _image(strata, dockerd, tmp_path, f"kd/exec-{uuid.uuid4().hex[:8]}:1")
    cname = f"kd-exec-{uuid.uuid4().hex[:8]}"
    dockerd.run("run", "-d", "--name", cname, name, "sleep", "600")
    strata("run", "-d", "--name", cname, name, "sleep", "600")
    try:
        seen = {}
        for tool, run in (("docker", dockerd.run), ("strata", strata)):
            since = int(time.time()) - 1
            assert run("exec", "-d", "-it", cname, "sh", "-c", "sleep 0.5; exit 4").returncode == 0
            assert run("exec", "-d", cname, "sh", "-c", "sleep 1; exit 3").returncode == 0
            failed = run("exec", "-d", "-t", cname, "nonexistent-cmd", check=False)
            assert failed.returncode == 1 and "executable file not found" in failed.stderr, failed.stderr
            seen[tool] = sorted(_exec_events(run, cname, since, 8))
        assert seen["strata"] == seen["docker"]
        assert "exec_die 4" in seen["strata"] and "exec_die 3" in seen["strata"]
    finally:
        dockerd.run("rm", "-f", cname, check=False)
        strata("rm", "-f", cname, check=False)


def test_system_df_verbose_format_runs_over_the_whole_usage(strata: Any, dockerd: Any, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    name, vol, cname = _image(strata, dockerd, tmp_path, f"kd/df-{tag}:1"), f"kd-dfvol-{tag}", f"kd-df-{tag}"
    for run in (dockerd.run, strata):
        run("volume", "create", vol)
        run("create", "--name", cname, "--network", "none", "--label", "k=v", "-v", f"{vol}:/data", name, "true")
    try:
        docs = {tool: json.loads(run("system", "df", "-v", "--format", "{{json .}}").stdout)
                for tool, run in (("docker", dockerd.run), ("strata", strata))}
        assert list(docs["strata"]) == list(docs["docker"]) == ["Images", "Containers", "Volumes", "BuildCache"]
        timed = ("ID", "CreatedAt", "CreatedSince", "RunningFor", "Status", "Mountpoint")

        def mine(tool: str, part: str, key: str, value: str) -> dict[str, str]:
            found = [e for e in docs[tool][part] if e[key] == value]
            assert len(found) == 1, (tool, part, docs[tool][part])
            return {k: v for k, v in found[0].items() if k not in timed}

        for part, key, value in (("Images", "Repository", f"kd/df-{tag}"), ("Containers", "Names", cname),
                                 ("Volumes", "Name", vol)):
            assert mine("strata", part, key, value) == mine("docker", part, key, value), part
        assert docs["strata"]["BuildCache"] == docs["docker"]["BuildCache"] == []
        for fmt in ("{{.Nope}}", "{{.Nope", "{{range .Volumes}}{{.Nope}}{{end}}", "{{len .BuildCache}} {{.BuildCache}}",
                    f'{{{{range .Volumes}}}}{{{{if eq .Name "{vol}"}}}}{{{{.Links}}}} {{{{.Label "x"}}}}{{{{end}}}}{{{{end}}}}',
                    'table {{range .Images}}{{if eq .Repository "kd/df-' + tag + '"}}{{len .ID}}{{end}}{{end}}'):
            d = dockerd.run("system", "df", "-v", "--format", fmt, check=False)
            s = strata("system", "df", "-v", "--format", fmt, check=False)
            assert (s.returncode, s.stdout, _temp_levelled(s.stderr)) == (d.returncode, d.stdout, d.stderr), fmt
        assert re.fullmatch(r"\[(0x[0-9a-f]+ ?)+\]", strata("system", "df", "-v", "--format", "{{.Volumes}}").stdout)
    finally:
        for run in (dockerd.run, strata):
            run("rm", "-f", cname, check=False)
            run("volume", "rm", vol, check=False)


def _resolved(run: Any, cname: str, name: str) -> str:
    """The address ``name`` resolves to in container ``cname`` ("" when it does not)."""
    out = run("exec", cname, "sh", "-c", f"ping -c1 -W1 {name} 2>&1 | head -1", check=False).stdout
    m = re.match(r"PING \S+ \(([0-9.]+)\)", out)
    return m.group(1) if m else ""


def test_links_on_a_user_network_resolve_and_are_recorded(strata: Any, dockerd: Any, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    tar = peers.busybox_rootfs_tar(tmp_path / "rootfs.tar", applets=(*peers.BUSYBOX_APPLETS, "ping"),
                                   extra_files={"etc/kd-id": tag.encode()})
    name, net, child, parent = f"kd/links-{tag}:1", f"kd-net-{tag}", f"kd-child-{tag}", f"kd-parent-{tag}"
    late = f"kd-late-{tag}"  # started after the linking container
    links = [f"{child}:kid", f"calias-{tag}:x", f"nonexistent-{tag}:zz", f"/{child}:/foo/bar", f"{late}:late"]
    try:
        for octet, run in ((0, dockerd.run), (1, strata)):  # subnets of their own: neither sees the other's
            run("import", "-c", 'CMD ["/bin/sh"]', str(tar), name)
            run("network", "create", "--subnet", f"10.{200 + int(tag[:2], 16) % 50}.{int(tag[2:4], 16) % 100 * 2 + octet}.0/24", net)
            run("run", "-d", "--name", child, "--network", net, "--network-alias", f"calias-{tag}", name, "sleep", "600")
            run("run", "-d", "--name", parent, "--network", net, *[f"--link={v}" for v in links], name, "sleep", "600")
        fmt = f"{{{{json .HostConfig.Links}}}} {{{{json (index .NetworkSettings.Networks \"{net}\").Links}}}}"
        assert strata("inspect", "-f", fmt, parent).stdout == dockerd.run("inspect", "-f", fmt, parent).stdout
        for tool, run in (("docker", dockerd.run), ("strata", strata)):
            ip = run("inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{net}").IPAddress}}}}', child).stdout.strip()
            assert [_resolved(run, parent, n) for n in ("kid", "x", "bar", child, "zz")] == [ip] * 4 + [""], tool
            run("run", "-d", "--name", late, "--network", net, name, "sleep", "600")
            ip = run("inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{net}").IPAddress}}}}', late).stdout.strip()
            assert _resolved(run, parent, "late") == ip, tool
    finally:
        for run in (dockerd.run, strata):
            run("rm", "-f", parent, child, late, check=False)
            run("network", "rm", net, check=False)


def test_a_linked_childs_new_address_reaches_its_parents_hosts(strata: Any, tmp_path: Path) -> None:
    """Docker's updateParentHosts (the private dockerd here has no default bridge: strata alone)."""
    tag = uuid.uuid4().hex[:8]
    tar = peers.busybox_rootfs_tar(tmp_path / "rootfs.tar")
    name, child, parent, other = f"kd/relink-{tag}:1", f"kd-child-{tag}", f"kd-parent-{tag}", f"kd-other-{tag}"
    strata("import", "-c", 'CMD ["/bin/sh"]', str(tar), name)
    address = "{{.NetworkSettings.IPAddress}}"
    try:
        strata("run", "-d", "--name", child, name, "sleep", "600")
        strata("run", "-d", "--name", parent, "--link", f"{child}:kid", name, "sleep", "600")
        first = strata("inspect", "-f", address, child).stdout.strip()
        assert re.search(rf"^{re.escape(first)}\tkid \S+ {child}$", strata("exec", parent, "cat", "/etc/hosts").stdout, re.M)
        strata("stop", "-t", "0", child)
        strata("run", "-d", "--name", other, name, "sleep", "600")  # takes the child's address
        strata("start", child)
        moved = strata("inspect", "-f", address, child).stdout.strip()
        assert moved and moved != first
        hosts = strata("exec", parent, "cat", "/etc/hosts").stdout
        assert re.search(rf"^{re.escape(moved)}\tkid \S+ {child}$", hosts, re.M), hosts
        assert not re.search(rf"^{re.escape(first)}\tkid", hosts, re.M), hosts
    finally:
        strata("rm", "-f", parent, child, other, check=False)


_MODES_TEMPLATE = (
    "{{with .HostConfig}}N[{{.NetworkMode.IsNone}} {{.NetworkMode.IsDefault}} {{.NetworkMode.IsPrivate}} "
    "{{.NetworkMode.IsContainer}} {{len .NetworkMode.ConnectedContainer}}|{{.NetworkMode.UserDefined}}|"
    "{{.NetworkMode.NetworkName}} {{.NetworkMode.IsBridge}} {{.NetworkMode.IsHost}} {{.NetworkMode.IsUserDefined}}] "
    "I[{{.IpcMode.IsPrivate}} {{.IpcMode.IsHost}} {{.IpcMode.IsShareable}} {{.IpcMode.IsContainer}} "
    "{{.IpcMode.IsNone}} {{.IpcMode.IsEmpty}} {{.IpcMode.Valid}} {{len .IpcMode.Container}}] "
    "P[{{.PidMode.IsPrivate}} {{.PidMode.IsHost}} {{.PidMode.IsContainer}} {{.PidMode.Valid}}] "
    "U[{{.UTSMode}}: {{.UTSMode.IsPrivate}} {{.UTSMode.IsHost}} {{.UTSMode.Valid}}] "
    "UN[{{.UsernsMode}}: {{.UsernsMode.IsHost}} {{.UsernsMode.IsPrivate}} {{.UsernsMode.Valid}}] "
    "C[{{.CgroupnsMode}}: {{.CgroupnsMode.IsPrivate}} {{.CgroupnsMode.IsHost}} {{.CgroupnsMode.IsEmpty}} "
    "{{.CgroupnsMode.Valid}}] G[{{.Cgroup}}: {{.Cgroup.IsContainer}} {{.Cgroup.Valid}} {{.Cgroup.Container}}] "
    "S[{{.Isolation}}: {{.Isolation.IsDefault}} {{.Isolation.IsHyperV}} {{.Isolation.IsProcess}} "
    "{{.Isolation.IsValid}}] {{json .CgroupnsMode}} {{eq .IpcMode \"host\"}} {{len .NetworkMode}}{{end}}"
)


def test_named_string_modes_methods_in_inspect_templates(strata: Any, dockerd: Any, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    name, net = _image(strata, dockerd, tmp_path, f"kd/modes-{tag}:1"), f"kd-modes-{tag}"
    first = f"kd-m1-{tag}"
    cases = {first: [], f"kd-m2-{tag}": ["--network", "host", "--ipc", "host", "--pid", "host", "--uts", "host",
                                        "--userns", "host", "--cgroupns", "host"],
             f"kd-m3-{tag}": ["--network", f"container:{first}", "--ipc", f"container:{first}",
                              "--pid", f"container:{first}", "--cgroupns", "private"],
             f"kd-m4-{tag}": ["--network", "none", "--ipc", "shareable"],
             f"kd-m5-{tag}": ["--network", net, "--ipc", "none", "--isolation", "default"]}
    try:
        for run in (dockerd.run, strata):
            run("network", "create", net)
            for cname, flags in cases.items():
                run("create", "--name", cname, *flags, name, "true")
        for cname in cases:
            d = dockerd.run("inspect", "-f", _MODES_TEMPLATE, cname, check=False)
            s = strata("inspect", "-f", _MODES_TEMPLATE, cname, check=False)
            assert (s.returncode, s.stdout) == (d.returncode, d.stdout), cname
            assert s.returncode == 0 and "map has no entry" not in s.stderr
    finally:
        for run in (dockerd.run, strata):
            run("rm", "-f", *reversed(list(cases)), check=False)
            run("network", "rm", net, check=False)


def test_load_of_what_is_not_a_whole_archive_in_dockers_words(strata: Any, dockerd: Any, tmp_path: Path) -> None:
    name = _image(strata, dockerd, tmp_path, f"kd/load-{uuid.uuid4().hex[:8]}:1")
    whole = tmp_path / "whole.tar"
    strata("save", "-o", str(whole), name)
    data = whole.read_bytes()
    cases = {"short": b"garbage\n", "text": b"not an archive at all\n" * 100, "empty": b"",
             "cut in a member's data": data[:100_000], "cut in a padding": data[:1124], "cut in a header": data[:700],
             "zeros then junk": b"\x00" * 512 + b"x" * 512}
    for what, content in cases.items():
        path = tmp_path / f"{what.replace(' ', '-')}.tar"
        path.write_bytes(content)
        d = dockerd.run("load", "-i", str(path), check=False)
        s = strata("load", "-i", str(path), check=False)
        level = [(p.returncode, re.sub(r"open /\S+?/(load-|docker-import-)[^/]+/", "open TMP/", _temp_levelled(p.stderr)))
                 for p in (s, d)]
        assert level[0] == level[1], what
        assert s.returncode == 1
    assert strata("load", "-i", str(whole)).stdout == f"Loaded image: {name}\n"
