"""strata as a Python library, used as the README's "As a library" shows: ``strata.login``,
``strata.push``, ``strata.copy``, ``strata.pull`` and ``strata.pull_if_missing`` against real strata
registries, with the images made by the ``strata`` command a user would run first."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from imagegen import validate
from server.helpers import ServerThread

from .conftest import StrataRun
from .faultserver import FaultRegistry


def _rootfs(path: Path) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in (("bin/hello", b"#!/bin/sh\necho hello\n"), ("etc/motd", b"library test\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def user_env(strata: StrataRun, monkeypatch: pytest.MonkeyPatch) -> StrataRun:
    for key in ("STRATA_ROOT", "DOCKER_CONFIG", "STRATA_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", strata.env["DOCKER_CONFIG"])
    monkeypatch.setenv("STRATA_CONFIG", strata.env["STRATA_CONFIG"])
    return strata


def test_import_is_cheap_and_lazy() -> None:
    code = "import sys, strata; print(sorted(m for m in sys.modules if m.startswith('strata')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['strata']"
    code = (
        "import strata, strata.copier, sys; print(strata.pull.__module__, strata.copy.__module__, "
        "all(hasattr(strata, n) for n in strata.__all__), 'strata.cli.main' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["strata.api", "strata.api", "True", "False"]  # the engine module never shadows copy


def test_push_copy_pull_as_a_user(user_env: StrataRun, tmp_path: Path, strata_registry: ServerThread) -> None:
    import strata

    strata_cli = user_env
    strata_cli("import", str(_rootfs(tmp_path / "rootfs.tar")), "lib/app:1", check=True)
    name = f"{strata_registry.url}/lib/app:1"
    strata_cli("tag", "lib/app:1", name, check=True)
    image_id = strata_cli("images", "-q", "--no-trunc", name, check=True).stdout.strip()

    lines: list[str] = []
    pushed = strata.push(name, root=strata_cli.root, progress=lambda ev: lines.append(f"{ev.id}: {ev.status}" if ev.id else ev.status))
    assert lines[0] == f"The push refers to repository [{strata_registry.url}/lib/app]"
    assert lines[-1] == f"1: digest: {pushed[0].digest} size: {pushed[0].size}"
    assert any(ln.endswith(": Pushed") for ln in lines)

    copied = strata.copy(f"docker://{name}", f"oci:{tmp_path / 'layout'}:1")
    assert copied.manifest_digest == pushed[0].digest and str(copied.image_id) == image_id
    assert validate(f"oci:{tmp_path / 'layout'}:1").manifest_digest == str(pushed[0].digest)  # complete

    other = tmp_path / "other-root"
    events: list[strata.ProgressEvent] = []
    pulled = strata.pull(name, root=other, progress=events.append)
    assert [str(i) for i in pulled.image_ids] == [image_id] and pulled.digests == [pushed[0].digest]
    assert pulled.changed and pulled.reference == name
    assert [ev.status for ev in events if not ev.id][-2:] == [
        f"Digest: {pushed[0].digest}", f"Status: Downloaded newer image for {name}",
    ]  # fmt: skip
    assert validate(f"strata:{name}", root=other).image_id == image_id  # the pulled store is complete
    again = strata.pull(name, root=other)
    assert not again.changed

    from strata.engine import Engine

    engine = Engine.open(tmp_path / "third-root")
    try:
        said: list[str] = []
        assert strata.pull_if_missing(engine, name, progress=lambda ev: said.append(ev.status)) is True
        assert said[0] == f"Unable to find image '{name}' locally"
        assert strata.pull_if_missing(engine, name) is False  # now present: nothing to do
        assert str(engine.resolve_image(name)) == image_id
    finally:
        engine.close()

    with pytest.raises(strata.StrataError, match=r"manifest for .* not found"):
        strata.pull(f"{strata_registry.url}/lib/app:nope", root=other)


def test_login_as_a_user(user_env: StrataRun, fault_registry: FaultRegistry) -> None:
    import strata

    fault_registry.users["bob"] = "pw-bob"
    with pytest.raises(strata.StrataError) as bad:
        strata.login(fault_registry.host, "bob", "wrong")
    assert bad.value.exit_code == 1
    result = strata.login(fault_registry.host, "bob", "pw-bob")
    assert result.stored_in_plain_text and result.config_file == Path(user_env.env["DOCKER_CONFIG"]) / "config.json"
    assert fault_registry.host in result.config_file.read_text()
