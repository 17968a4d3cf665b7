"""Image commands side by side with Docker 20.10: the same commands in a private dockerd and in strata,
stdout, stderr and exit codes compared after normalising what must differ (image IDs, times, the
``Error response from daemon:`` prefix, column widths)."""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from corehelpers import Strata  # type: ignore[import-not-found]

from strata.errors import StrataError
from strata.image.config import apply_changes, empty_container_config

pytestmark = pytest.mark.peers


@pytest.fixture
def rootfs_tar(tmp_path: Path) -> Path:
    """A rootfs whose layer no other test shares: the session's dockerd keeps other tests' images, and a
    layer still used there would make Docker print fewer ``Deleted:`` lines than a fresh strata store."""
    import uuid

    import peers

    return peers.busybox_rootfs_tar(tmp_path / "rootfs.tar", extra_files={"etc/parity-id": uuid.uuid4().hex.encode()})

Result = tuple[int, str, str]
Both = Callable[..., tuple[Result, Result]]

_TIME_AGO = re.compile(r"(Less than a second|About an? \w+|\d+ \w+) ago")


def _normalise(rc: int, out: str, err: str, tool: str) -> Result:
    ids: dict[str, str] = {}

    def ident(m: re.Match[str]) -> str:
        key = m.group(0)[-12:] if len(m.group(0)) >= 64 else m.group(0)
        label = ids.setdefault(key, f"<ID{len(ids)}>")
        return f"sha256:{label}" if m.group(0).startswith("sha256:") else label

    def clean(text: str) -> str:
        text = re.sub(r"(sha256:)?[0-9a-f]{64}|\b[0-9a-f]{12}\b", ident, text)
        text = _TIME_AGO.sub("<ago>", text)
        text = re.sub(r"\d{4}-\d\d-\d\d[T ][0-9:.]+(Z| \+0000 UTC)", "<time>", text)
        text = text.replace(f"'{tool} ", "'X ").replace(f'"{tool} ', '"X ')
        # Docker's list contexts marshal themselves HTML-escaped ({{json .}}); strata's template engine
        # has no per-type marshaler: a known difference, levelled here
        text = text.replace("\\u003c", "<").replace("\\u003e", ">")
        return "\n".join(re.sub(r" {2,}", "  ", line).rstrip() for line in text.split("\n"))

    lines = [re.sub(r"^(Error response from daemon: |Error: )", "", line) for line in err.split("\n")]
    return rc, clean(out), clean("\n".join(lines))


@pytest.fixture
def both(strata: Strata, dockerd: Any) -> Any:
    """``both(*args)``: the command in dockerd and in strata, each normalised; images the test made in
    dockerd (repositories ``parity*``) are removed afterwards."""

    def run(*args: str, input: str | None = None) -> tuple[Result, Result]:
        d = dockerd.run(*args, check=False, input=input)
        s = strata(*args, check=False, input=input)
        return _normalise(d.returncode, d.stdout, d.stderr, "docker"), _normalise(s.returncode, s.stdout, s.stderr, "strata")

    yield run
    ids = dockerd.run("images", "-q", "--filter", "reference=parity*", check=False).stdout.split()
    ids += dockerd.run("images", "-q", "--filter", "reference=parity*/*", check=False).stdout.split()
    if ids:
        dockerd.run("rmi", "-f", *sorted(set(ids)), check=False)


def _same(both: Both, *args: str, input: str | None = None) -> Result:
    d, s = both(*args, input=input)
    assert s == d, (args, d, s)
    return s


def _import_both(both: Both, tar: Path, ref: str, *opts: str) -> None:
    d, s = both("import", *opts, str(tar), ref)
    assert d[0] == s[0] == 0, (d, s)


def test_images_filters_and_formats(both: Both, rootfs_tar: Path) -> None:
    _import_both(both, rootfs_tar, "parity-a/x:1")
    time.sleep(1.1)  # Docker orders by creation second: keep the two apart
    _import_both(both, rootfs_tar, "parity-b:1", "-c", "LABEL k=v")
    for args in (("tag", "parity-b:1", "parity-b:2"), ("tag", "parity-b:1", "localhost:5000/parity-c/y:3")):
        _same(both, *args)
    for args in (
        ("images", "parity-a/*"),  # '*' never crosses '/', as Go's path.Match
        ("images", "-f", "reference=parity*"),
        ("images", "-f", "reference=*/x"),
        ("images", "-f", "reference=parity-[a-b]*"),
        ("images", "-f", "reference=localhost:5000/parity-c/*"),
        ("images", "-f", "reference=parity-b:[0-1]"),
        ("images", "-f", "reference=parity*", "-f", "label=k=v"),
        ("images", "-f", "reference=parity*", "-f", "dangling=false"),
        ("images", "-f", "reference=parity*", "-f", "dangling=true", "-f", "dangling=false"),
        ("images", "-f", "dangling=maybe"),
        ("images", "-f", "dangling=1"),
        ("images", "-f", "bogus=1"),
        ("images", "-f", "bogus"),
        ("images", "--format", "{{.Nope}}", "parity-b"),
        ("images", "--format", "{{json .}}", "parity-a/x"),
        ("images", "--format", "table {{.Repository}}\t{{.Tag}}\t{{.VirtualSize}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}\t{{.CreatedAt}}\t{{.Digest}}", "parity-b"),
        ("history", "-H=false", "parity-b:1"),
        ("history", "--format", "{{.Nope}}", "parity-b:1"),
        ("history", "--format", "{{json .}}", "parity-b:1"),
    ):
        _same(both, *args)


def test_digests_listing(both: Both, strata: Strata, dockerd: Any, distribution_registry: Any, rootfs_tar: Path) -> None:
    """Pulled images carry digest references: --digests rows, a --format naming {{.Digest}} turning digests
    on (the CLI's needDigest), tags of one repository in lexical order whatever order they were made in."""
    repo = f"{distribution_registry.host}/parity-dg/img"
    _import_both(both, rootfs_tar, f"{repo}:2")
    dockerd.run("push", f"{repo}:2")
    dockerd.run("rmi", f"{repo}:2")
    for tool in (dockerd.run, strata):
        tool("pull", "-q", f"{repo}:2")
        tool("tag", f"{repo}:2", f"{repo}:1")
    for args in (
        ("images", "--digests", repo),
        ("images", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}", repo),
        ("images", "--format", "{{.Tag}} {{ .Digest }}", repo),
        ("images", repo),
        ("inspect", "--format", "{{.RepoTags}} {{.RepoDigests}}", f"{repo}:1"),
    ):
        _same(both, *args)
    for tool in (dockerd.run, strata):
        tool("rmi", "-f", f"{repo}:1", f"{repo}:2")


def test_image_prune(both: Both, rootfs_tar: Path) -> None:
    """Prompt, filters and refusals of image prune; only images labelled for this test are pruned (the
    daemon is shared with other tests)."""
    _import_both(both, rootfs_tar, "parity-p:1", "-c", "LABEL parity-prune=a")
    _import_both(both, rootfs_tar, "parity-p:2", "-c", "LABEL parity-prune=b")
    for args, answer in (
        (("image", "prune"), ""),  # the prompt is written even without a terminal; EOF declines
        (("image", "prune", "-a"), "yes\n"),  # only "y" goes on
        (("image", "prune", "--filter", "bogus=1"), ""),  # declined before the daemon sees the filter
        (("image", "prune", "-f", "--filter", "bogus=1"), ""),
        (("image", "prune", "-f", "--filter", "until=abc"), ""),
        (("image", "prune", "-f", "--filter", "until=1h", "--filter", "until=2h"), ""),
        (("image", "prune", "-a", "--filter", "label=parity-prune=a"), "y\n"),
        (("image", "prune", "-af", "--filter", "label=parity-prune", "--filter", "until=1000h"), ""),
    ):
        _same(both, *args, input=answer)


def test_rmi_errors(both: Both, rootfs_tar: Path) -> None:
    _import_both(both, rootfs_tar, "parity-r:1")
    _same(both, "tag", "parity-r:1", "parity-r:2")
    for args in (
        ("rmi", "parity-nosuch"),
        ("rmi", "-f", "parity-nosuch"),  # -f: an image that does not exist is no failure
        ("rmi", ""),
        ("rmi", "docker.io/library/parity-nosuch:latest"),
        ("rmi", "parity-nosuch", "parity-r:2"),  # the untag happens, the error comes last
        ("rmi", "-f", "parity-nosuch", "parity-r:1"),
    ):
        _same(both, *args)


def test_save_selection(both: Both, strata: Strata, dockerd: Any, rootfs_tar: Path, tmp_path: Path) -> None:
    _import_both(both, rootfs_tar, "parity-s:1")
    _same(both, "tag", "parity-s:1", "parity-s:2")
    for args in (
        ("save", "-o", str(tmp_path / "x.tar"), "parity-s:9"),
        ("save", "-o", str(tmp_path / "x.tar"), "parity-nosuch"),
        ("save", "-o", str(tmp_path / "x.tar"), "abcdef0123"),
        ("save", "-o", str(tmp_path / "x.tar"), "parity-s:1", "parity-nosuch"),
    ):
        _same(both, *args)
    # a repository without a tag saves every tag of it (there is no :latest here)
    tags = []
    for tool in (dockerd.run, strata):
        path = tmp_path / f"repo-{len(tags)}.tar"
        tool("save", "-o", str(path), "parity-s")
        with tarfile.open(path) as tar:
            manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        tags.append(sorted(t for e in manifest for t in e["RepoTags"]))
    assert tags[0] == tags[1] == ["parity-s:1", "parity-s:2"]


def test_inspect(both: Both, rootfs_tar: Path) -> None:
    _import_both(both, rootfs_tar, "parity-i:1", "-c", "CMD echo a > /b && true")
    d, s = both("inspect", "parity-i:1")
    assert '"echo a > /b && true"' in s[1] and '"echo a > /b && true"' in d[1]  # no HTML escaping
    for args in (
        ("inspect", "--type", "bogus", "parity-i:1"),
        ("inspect", "--type", "container", "parity-i:1"),
        ("inspect", "--type", "image", "parity-nosuch"),
        ("image", "inspect", "parity-nosuch"),
        ("image", "inspect", "--format", "{{.Id}}", "parity-i:1", "parity-nosuch"),
        ("inspect", "--format", "{{.Nope}}", "parity-i:1"),
        ("inspect", "--format", "{{.Id}}", "parity-nosuch", "parity-i:1", "parity-nosuch2"),
        ("inspect", "--format", "{{.Config.Labels}} {{.Config.Env}} {{.Config.Cmd}} {{.ContainerConfig.Cmd}}", "parity-i:1"),
        ("inspect", "--format", "{{.Id", "parity-i:1"),
    ):
        _same(both, *args)


def test_import_refusals(both: Both, rootfs_tar: Path) -> None:
    zero = "0" * 64
    for args in (
        ("import", str(rootfs_tar), f"parity-d@sha256:{zero}"),
        ("import", str(rootfs_tar), f"parity-d:1@sha256:{zero}"),
        ("import", "-c", "FROM x", str(rootfs_tar), "parity-d:1"),
        ("import", "-c", "STOPSIGNAL 9", str(rootfs_tar), "parity-d:1"),
        ("import", "-c", "ENV A", str(rootfs_tar), "parity-d:1"),
    ):
        _same(both, *args)
    _import_both(both, rootfs_tar, "parity-d:2", "-c", "ENV A=1", "-c", "ENV B=$A C=${A:-x}", "-c", "ENTRYPOINT x")
    _same(both, "inspect", "--format", "{{json .Config}}", "parity-d:2")


# Each -c list as a small Dockerfile: expansion, quoting, JSON forms, ENTRYPOINT resetting CMD,
# validation of every instruction, Docker's field order and error texts.
CHANGES: list[list[str]] = [
    ['CMD ["/bin/sh"]', "ENTRYPOINT /bin/echo hi", 'ENV A=1 B="x y"', "ENV C d e", "EXPOSE 80 53/udp",
     'LABEL a=b "c d"=e', "USER nobody", "VOLUME /data /x", 'VOLUME ["/y"]', "WORKDIR /tmp", "ONBUILD RUN x"],
    ["STOPSIGNAL 9"], ["FROM x"], ["bogus x"], ["ENV"], ["ENV A"], ["LABEL a"], ["CMD"], ["CMD  "], ["CMD []"],
    ['CMD ["a", 1]'], ["cmd echo hi"], ["ENTRYPOINT"], ["ENTRYPOINT []"], ['CMD ["x"]', "ENTRYPOINT y"],
    ["ENTRYPOINT y", 'CMD ["x"]'], ["CMD []", "ENTRYPOINT y"], ["EXPOSE"], ["EXPOSE abc"], ["EXPOSE 80-81"],
    ["EXPOSE 70000"], ["EXPOSE 80/xyz"], ["EXPOSE 90-80"], ["EXPOSE 1.2.3.4:80:80"], ["EXPOSE 8080-8082/udp 22"],
    ["ENV P=\"80 81\"", "EXPOSE $P"], ["USER"], ["USER a b"], ["USER $X"], ["WORKDIR"], ["WORKDIR rel"],
    ["WORKDIR a", "WORKDIR b"], ["WORKDIR /x", "WORKDIR ../y"], ["VOLUME"], ['VOLUME ["/a", ""]'], ["ONBUILD"],
    ["ONBUILD FROM x"], ["ONBUILD ONBUILD x"], ["ONBUILD  run   echo hi"], ["LABEL"], ["LABEL a b c"],
    ["LABEL a=1 a=2 b"], ["LABEL b=1", "LABEL a=2"], ["ENV A=1 B"], ["ENV A=$HOME"], ["LABEL x=$A"],
    ["ENV A 1", "ENV B 2", "ENV A 3"], ["ENV A=1 B=$A"], ["ENV X 'q' \"r\" s\\ t"], ['ENV A="a b" C=d\\ e'],
    ["ENV A=1", "ENV B=$A C=${A:-z} D=${X:-def} E=${A:+alt} F=\"q $A\" G='$A' H=\\$A"],
    ["ENV A=${"], ["ENV A=${B"], ['ENV A="x'], ["ENV A=${B:x}"], ["ENV --x=1 A=1"], ["HEALTHCHECK"],
    ["HEALTHCHECK NONE"], ["HEALTHCHECK NONE x"], ["HEALTHCHECK CMD true"], ["HEALTHCHECK CMD"], ["HEALTHCHECK FOO x"],
    ['HEALTHCHECK --interval=30s --timeout=1m30s --start-period=100ms --retries=3 CMD ["true"]'],
    ["HEALTHCHECK --interval=0s CMD true"], ["HEALTHCHECK --interval=abc CMD true"],
    ["HEALTHCHECK --retries=0 CMD x"], ["HEALTHCHECK --bogus=1 CMD x"], ['SHELL ["/bin/sh"]'],
    ["CMD a \\\n b"], ["# c"], ['CMD ["a"] junk'], ["ENV A=1\nCMD x"],
]  # fmt: skip


def test_change_instructions(dockerd: Any, tmp_path: Path) -> None:
    """Every -c list applied by Docker's daemon (``docker import``) and by strata's ``apply_changes``:
    the same Config, or the same error."""
    tiny = tmp_path / "tiny.tar"
    with tarfile.open(tiny, "w") as tar:
        info = tarfile.TarInfo("f")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    differ = []
    for changes in CHANGES:
        args = [a for c in changes for a in ("-c", c)]
        d = dockerd.run("import", *args, str(tiny), check=False)
        if d.returncode == 0:
            image_id = d.stdout.strip()
            want: Any = json.loads(dockerd.run("inspect", "--format", "{{json .Config}}", image_id).stdout)
            dockerd.run("rmi", image_id)
        else:
            want = d.stderr.strip().removeprefix("Error response from daemon: ")
        try:
            got: Any = apply_changes(empty_container_config(), changes)
        except StrataError as e:
            got = str(e)
        if got != want or (isinstance(got, dict) and list(got) != list(want)):
            differ.append((changes, want, got))
    assert not differ


@pytest.mark.runtime
def test_system_df(strata: Strata, rootfs_tar: Path) -> None:
    """``system df`` and ``df -v`` in a daemon of its own (the totals cover every image): an intermediate
    image of a commit chain is not counted, shared layers are shared sizes, and only the unique bytes
    of an image a container uses are not reclaimable."""
    import shutil

    import peers

    if shutil.which("runc") is None:
        pytest.skip("runc is not installed")
    with peers.start_dockerd() as own:

        def run(tool: Callable[..., Any], *args: str) -> Any:
            return tool(*args, check=False) if tool is strata else own.run(*args, check=False)

        try:
            _df_compare(own, run, strata, rootfs_tar)
        finally:
            strata("rm", "-f", "dfc", check=False)


def _df_compare(own: Any, run: Callable[..., Any], strata: Strata, rootfs_tar: Path) -> None:
    for tool in (own.run, strata):
        steps = [
            ("import", "-c", 'CMD ["/bin/sh"]', str(rootfs_tar), "dfbase:1"),
            ("run", "--network", "none", "--name", "dfa", "dfbase:1", "sh", "-c", "echo aaaa > /a"),
            ("commit", "dfa", "dfmid"), ("rm", "dfa"),
            ("run", "--network", "none", "--name", "dfb", "dfmid", "sh", "-c", "echo bb > /b"),
            ("commit", "dfb", "dftop:1"), ("rm", "dfb"), ("rmi", "dfmid"),
            ("create", "--network", "none", "--name", "dfc", "dftop:1", "sh", "-c", "echo c"),
            ("import", "-m", "other", str(rootfs_tar), "dfother:1"),
        ]  # fmt: skip
        for step in steps:
            assert run(tool, *step).returncode == 0, step
            if step[0] in ("import", "commit"):
                time.sleep(1.1)  # creation seconds apart: the same order in both
    for args in (("system", "df"), ("system", "df", "-v")):
        d, s = run(own.run, *args), run(strata, *args)
        assert _normalise(s.returncode, s.stdout, s.stderr, "strata") == _normalise(
            d.returncode, d.stdout, d.stderr, "docker"
        ), args


def _archive(path: Path, layer: bytes, history: list[dict[str, Any]] | None, tag: str) -> None:
    """A docker-save archive of a one-layer image whose config carries ``history`` (or none)."""
    import hashlib

    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    cfg: dict[str, Any] = {"architecture": "amd64", "config": {}, "created": "2024-01-01T00:00:00Z", "os": "linux",
                           "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    if history is not None:
        cfg["history"] = history
    config = json.dumps(cfg).encode()
    cid = hashlib.sha256(config).hexdigest()
    manifest = json.dumps([{"Config": f"{cid}.json", "RepoTags": [tag], "Layers": ["l/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in ((f"{cid}.json", config), ("l/layer.tar", layer), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_history_of_unusual_configs(both: Both, rootfs_tar: Path, tmp_path: Path) -> None:
    """No history at all: Docker shows none (strata used to invent a row); more non-empty history entries
    than layers: Docker's error."""
    layer = rootfs_tar.read_bytes()
    cases = {
        "parity-h:none": None,
        "parity-h:extra": [{"created": "2024-01-01T00:00:00Z", "created_by": "a"},
                           {"created": "2024-01-01T00:00:00Z", "created_by": "b"}],
        "parity-h:empty": [{"created": "2024-01-01T00:00:00Z", "created_by": "nop", "empty_layer": True},
                           {"created": "2024-01-01T00:00:00Z", "created_by": "add"}],
    }  # fmt: skip
    for tag, history in cases.items():
        path = tmp_path / f"{tag.split(':')[1]}.tar"
        _archive(path, layer, history, tag)
        _same(both, "load", "-i", str(path))
        _same(both, "history", tag)
        _same(both, "history", "--format", "{{.ID}} {{.CreatedBy}} {{.Size}}", tag)


# --------------------------------------------------------------------------- issue 15: outside `run`

_ACCEPT = {"Accept": "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"}


def _pushed_types(registry: Any, repo: str, tag: str) -> tuple[str, str, list[str]]:
    status, _, body = registry.request("GET", f"/v2/{repo}/manifests/{tag}", headers=_ACCEPT)
    assert status == 200, body
    doc = json.loads(body)
    return doc["mediaType"], doc["config"]["mediaType"], [lay["mediaType"] for lay in doc["layers"]]


def test_push_media_types_of_imported_and_loaded_images(
    both: Both, strata: Strata, dockerd: Any, distribution_registry: Any, rootfs_tar: Path, tmp_path: Path
) -> None:
    """An image made locally (import; load of a Docker archive) is pushed as Docker pushes it: schema 2,
    Docker config, ``tar.gzip`` layers -- not OCI."""
    host = distribution_registry.host
    _import_both(both, rootfs_tar, "parity-mt:1")
    archive = tmp_path / "docker-saved.tar"
    dockerd.run("tag", "parity-mt:1", "parity-mt:loaded")
    dockerd.run("save", "-o", str(archive), "parity-mt:loaded")
    strata("load", "-i", str(archive))
    assert strata("images", "-q", "parity-mt:1").stdout != strata("images", "-q", "parity-mt:loaded").stdout
    seen = {}
    for name, tool, source in (("docker", dockerd.run, "parity-mt:1"), ("strata", strata, "parity-mt:1"),
                               ("strata-loaded", strata, "parity-mt:loaded")):  # fmt: skip
        tool("tag", source, f"{host}/parity-mt/{name}:1")
        tool("push", f"{host}/parity-mt/{name}:1")
        seen[name] = _pushed_types(distribution_registry, f"parity-mt/{name}", "1")
    assert seen["docker"] == (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.container.image.v1+json",
        ["application/vnd.docker.image.rootfs.diff.tar.gzip"],
    )
    assert seen["strata"] == seen["strata-loaded"] == seen["docker"]


def test_load_of_an_archive_repacked_with_a_root_entry(both: Both, dockerd: Any, rootfs_tar: Path, tmp_path: Path) -> None:
    """``tar -C dir -cf x.tar .`` puts a ``./`` directory first: Docker loads it, so does strata."""
    import subprocess

    _import_both(both, rootfs_tar, "parity-rp:1")
    saved, unpacked, repacked = tmp_path / "saved.tar", tmp_path / "unpacked", tmp_path / "repacked.tar"
    dockerd.run("save", "-o", str(saved), "parity-rp:1")
    unpacked.mkdir()
    subprocess.run(["tar", "-C", str(unpacked), "-xf", str(saved)], check=True)
    subprocess.run(["tar", "-C", str(unpacked), "-cf", str(repacked), "."], check=True)
    with tarfile.open(repacked) as tar:
        assert tar.getnames()[0] == "."
    _same(both, "rmi", "parity-rp:1")
    _same(both, "load", "-i", str(repacked))
    _same(both, "images", "--format", "{{.Repository}}:{{.Tag}}", "parity-rp")


def _no_verifying(part: int | str) -> int | str:
    return part if isinstance(part, int) else re.sub(r"(?m)^\S+: Verifying Checksum\n", "", part)


def test_pull_by_digest_and_search(both: Both, dockerd: Any, distribution_registry: Any, rootfs_tar: Path) -> None:
    """``pull repo@sha256:…`` names the whole reference before ``Pulling from``; ``search`` on a private
    registry prints the names as Docker does."""
    host = distribution_registry.host
    repo = f"{host}/parity-pd/img"
    _import_both(both, rootfs_tar, f"{repo}:1")
    dockerd.run("push", f"{repo}:1")
    digest = dockerd.run("inspect", "--format", "{{index .RepoDigests 0}}", f"{repo}:1").stdout.strip()
    assert "@sha256:" in digest
    both("rmi", f"{repo}:1")  # Docker untags the digest too (it pushed): not compared
    d, s = both("pull", digest)
    # "Verifying Checksum" is a progress update Docker's transfer broadcast may drop: not compared
    assert [_no_verifying(r) for r in s] == [_no_verifying(r) for r in d], (d, s)
    _same(both, "images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}", repo)
    _same(both, "pull", "-q", digest)
    _same(both, "rmi", digest)


def test_search_on_a_strata_registry(both: Both, dockerd: Any, rootfs_tar: Path, tmp_path: Path) -> None:
    """The names ``/v1/search`` answers are printed as the registry gives them, as Docker does."""
    from server.helpers import ServerProcess  # type: ignore[import-not-found]

    _import_both(both, rootfs_tar, "parity-se:1")
    with ServerProcess(tmp_path / "reg", None) as reg:
        host = reg.url
        dockerd.run("tag", "parity-se:1", f"{host}/parity-se/found:1")
        dockerd.run("push", f"{host}/parity-se/found:1")
        for args in (("search", f"{host}/parity-se"), ("search", "--format", "{{.Name}}", f"{host}/found"),
                     ("search", f"{host}/parity-nosuch"), ("search", "--no-trunc", f"{host}/parity")):  # fmt: skip
            _same(both, *args)


@pytest.fixture
def run_both(both: Both, strata: Strata, dockerd: Any) -> Any:
    """``both`` for tests that run containers: containers named ``parity-c*`` are removed afterwards."""
    import shutil

    if shutil.which("runc") is None:
        pytest.skip("runc is not installed")
    made: list[str] = []

    def run(*args: str, input: str | None = None) -> tuple[Result, Result]:
        if args[:1] in (("run",), ("create",)) and "--name" in args:
            made.append(args[args.index("--name") + 1])
        return both(*args, input=input)

    yield run
    for name in made:
        dockerd.run("rm", "-f", name, check=False)
        strata("rm", "-f", name, check=False)


@pytest.mark.runtime
def test_diff_of_a_directory_removed_and_recreated(run_both: Both, tmp_path: Path) -> None:
    """A directory removed and made again is opaque in the container's layer: what it held below is
    deleted, and ``diff`` says so as Docker does."""
    import peers

    files = {"etc/pd/a": b"a", "etc/pd/b": b"b", "etc/pd/sub/c": b"c", "etc/parity-id": str(tmp_path).encode()}
    tar = peers.busybox_rootfs_tar(tmp_path / "opq.tar", extra_files=files)
    _import_both(run_both, tar, "parity-opq:1")
    script = "rm -rf /etc/pd && mkdir -p /etc/pd/sub && echo x > /etc/pd/a && echo n > /etc/pd/new"
    d, s = run_both("run", "--network", "none", "--name", "parity-c-opq", "parity-opq:1", "sh", "-c", script)
    assert d[0] == s[0] == 0, (d, s)
    d, s = run_both("diff", "parity-c-opq")
    # Docker's naive diff walks Go maps: the order inside a directory varies from run to run
    assert (s[0], sorted(s[1].splitlines()), s[2]) == (d[0], sorted(d[1].splitlines()), d[2]), (d, s)
    assert "D /etc/pd/b" in s[1].splitlines()


def _tar_entries(data: bytes, names: set[str] | None = None) -> dict[str, tuple[Any, ...]]:
    """name -> (type, mode, size, link target, device) of a tar's members (``names`` only, if given)."""
    out: dict[str, tuple[Any, ...]] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            name = m.name.removeprefix("./").rstrip("/")
            if names is None or name in names:
                out[name] = (m.type, oct(m.mode & 0o7777), m.size, m.linkname, (m.devmajor, m.devminor))
    return out


_INIT_PATHS = {".dockerenv", "etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/mtab", "dev/console",
               "dev/pts", "dev/shm", "dev", "proc", "sys", "etc"}  # fmt: skip


@pytest.mark.runtime
def test_export_holds_the_init_files(run_both: Both, strata: Strata, dockerd: Any, rootfs_tar: Path) -> None:
    """``export`` of a created and of a run container: the files Docker's init layer puts in (empty
    mount points /.dockerenv, /etc/hostname, /etc/hosts, /etc/resolv.conf, /dev/console ...)."""
    import subprocess

    _import_both(run_both, rootfs_tar, "parity-ex:1")
    d, s = run_both("create", "--network", "none", "--name", "parity-c-ex1", "parity-ex:1", "true")
    assert d[0] == s[0] == 0, (d, s)
    d, s = run_both("run", "--network", "none", "--name", "parity-c-ex2", "parity-ex:1", "true")
    assert d[0] == s[0] == 0, (d, s)
    for name in ("parity-c-ex1", "parity-c-ex2"):
        docker = subprocess.run(dockerd.argv("export", name), capture_output=True, check=True, env=dockerd.env)
        ours = strata("export", name, text=False)
        want, got = _tar_entries(docker.stdout, _INIT_PATHS), _tar_entries(ours.stdout, _INIT_PATHS)  # type: ignore[arg-type]
        assert got == want, (name, want, got)


def _with_devices(src: Path, dest: Path) -> Path:
    """``src`` (a rootfs tar) with the device nodes a debootstrap rootfs has in /dev, and a block device."""
    nodes = [("dev/null", tarfile.CHRTYPE, 1, 3, 0o666), ("dev/zero", tarfile.CHRTYPE, 1, 5, 0o666),
             ("dev/full", tarfile.CHRTYPE, 1, 7, 0o666), ("dev/tty", tarfile.CHRTYPE, 5, 0, 0o666),
             ("dev/loop7", tarfile.BLKTYPE, 7, 7, 0o660)]  # fmt: skip
    with tarfile.open(src) as tin, tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tout:
        for m in tin.getmembers():
            tout.addfile(m, tin.extractfile(m) if m.isreg() else None)
        for name, kind, major, minor, mode in nodes:
            info = tarfile.TarInfo(name)
            info.type, info.devmajor, info.devminor, info.mode, info.mtime = kind, major, minor, mode, 1_700_000_000
            tout.addfile(info)
    return dest


_DEV_PATHS = {"dev/null", "dev/zero", "dev/full", "dev/tty", "dev/loop7", "blk", "chr"}


@pytest.mark.runtime
def test_device_nodes_in_layers_export_and_commit(run_both: Both, strata: Strata, dockerd: Any, rootfs_tar: Path,
                                                  tmp_path: Path) -> None:  # fmt: skip
    """Character and block devices of a layer are kept: ``export`` and an export -> import round trip
    hold /dev/null, /dev/zero ... as Docker's do; a container that makes a block device is committed."""
    import subprocess

    tar = _with_devices(rootfs_tar, tmp_path / "devs.tar")
    _import_both(run_both, tar, "parity-dev:1")

    def exported(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        docker = subprocess.run(dockerd.argv("export", name), capture_output=True, check=True, env=dockerd.env)
        ours = strata("export", name, text=False).stdout
        return _tar_entries(docker.stdout, _DEV_PATHS), _tar_entries(ours, _DEV_PATHS)  # type: ignore[arg-type]

    d, s = run_both("create", "--network", "none", "--name", "parity-c-dev1", "parity-dev:1", "true")
    assert d[0] == s[0] == 0, (d, s)
    want, got = exported("parity-c-dev1")
    assert got == want and len(got) == 5, (want, got)
    # the export imported again and exported again: the nodes survive the round trip
    out = tmp_path / "exported.tar"
    out.write_bytes(strata("export", "parity-c-dev1", text=False).stdout)  # type: ignore[arg-type]
    _import_both(run_both, out, "parity-dev:2")
    d, s = run_both("create", "--network", "none", "--name", "parity-c-dev2", "parity-dev:2", "true")
    assert d[0] == s[0] == 0, (d, s)
    want2, got2 = exported("parity-c-dev2")
    assert got2 == want2 == want, (want2, got2)
    # a container that makes devices, committed; the committed image runs and holds them
    # stat without times: the two runs may straddle a minute, and ls -l prints the minute
    show = ["stat", "-c", "%A %u %g %t %T %n", "/blk", "/chr"]
    script = "mknod /blk b 7 9 && mknod /chr c 1 3 && " + " ".join(f"'{a}'" for a in show)
    d, s = run_both("run", "--network", "none", "--name", "parity-c-dev3", "parity-dev:1", "sh", "-c", script)
    assert d == s and d[0] == 0, (d, s)
    d, s = run_both("diff", "parity-c-dev3")
    assert sorted(d[1].splitlines()) == sorted(s[1].splitlines()) and d[0] == s[0] == 0, (d, s)
    d, s = run_both("commit", "parity-c-dev3", "parity-dev:3")
    assert d[0] == s[0] == 0, (d, s)
    _same(run_both, "run", "--rm", "--network", "none", "parity-dev:3", *show)


@pytest.mark.runtime
def test_push_media_types_of_a_committed_image(run_both: Both, strata: Strata, dockerd: Any,
                                               distribution_registry: Any, rootfs_tar: Path) -> None:  # fmt: skip
    """A committed image is pushed as Docker pushes it: schema 2 with ``tar.gzip`` layers."""
    host = distribution_registry.host
    _import_both(run_both, rootfs_tar, "parity-mc:1")
    d, s = run_both("run", "--network", "none", "--name", "parity-c-mc", "parity-mc:1", "sh", "-c", "echo x > /x")
    assert d[0] == s[0] == 0, (d, s)
    seen = []
    for name, tool in (("docker", dockerd.run), ("strata", strata)):
        tool("commit", "parity-c-mc", f"{host}/parity-mc/{name}:1")
        tool("push", f"{host}/parity-mc/{name}:1")
        seen.append(_pushed_types(distribution_registry, f"parity-mc/{name}", "1"))
    assert seen[1] == seen[0] == (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.container.image.v1+json",
        ["application/vnd.docker.image.rootfs.diff.tar.gzip"] * 2,
    )


def test_push_keeps_an_oci_image_oci(strata: Strata, distribution_registry: Any, rootfs_tar: Path, tmp_path: Path) -> None:
    """Only images made here go as Docker's schema 2: an image pulled as OCI is pushed as OCI."""
    host = distribution_registry.host
    strata("import", str(rootfs_tar), "parity-oci:1")
    strata("copy", "strata:parity-oci:1", f"oci:{tmp_path / 'layout'}:1")
    strata("copy", f"oci:{tmp_path / 'layout'}:1", f"docker://{host}/parity-oci/src:1")
    strata("rmi", "parity-oci:1")
    strata("pull", "-q", f"{host}/parity-oci/src:1")
    strata("tag", f"{host}/parity-oci/src:1", f"{host}/parity-oci/dst:1")
    strata("push", f"{host}/parity-oci/dst:1")
    kinds = _pushed_types(distribution_registry, "parity-oci/dst", "1")
    assert kinds == _pushed_types(distribution_registry, "parity-oci/src", "1")
    assert kinds[0] == "application/vnd.oci.image.manifest.v1+json"
