"""``COPY --link`` as BuildKit documents it (neither Docker 20.10 nor Debian's buildah accept the flag,
so there is no peer to compare with): the sources are copied into an empty tree that becomes the
step's layer, whatever the base holds. The same step over two different bases gives the same layer
digest; the layer holds the destination's missing parents as plain 0755 root directories; a symlink
in the base's destination path is not followed (the path becomes directories)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from build_helpers import BUSYBOX, Strata
from imagetree import read_image


def _ctx(tmp_path: Path, dockerfile: str) -> Path:
    ctx = tmp_path / "ctx"
    (ctx / "dir" / "sub").mkdir(parents=True, exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / "local.txt").write_text("local\n")
    (ctx / "dir" / "f").write_text("f\n")
    (ctx / "dir" / "sub" / "g").write_text("g\n")
    return ctx


def _layers(strata: Strata, ref: str) -> list[str]:
    out: list[str] = json.loads(strata("inspect", "-f", "{{json .RootFS.Layers}}", ref).stdout)
    return out


def _layer_members(strata: Strata, ref: str, tmp_path: Path, index: int) -> dict[str, tuple[int, int, int]]:
    """name -> (mode, uid, gid) of one layer of a saved image."""
    import tarfile

    archive = tmp_path / f"{ref.replace(':', '-')}.tar"
    strata("save", "-o", str(archive), ref)
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        blob = outer.extractfile(manifest[0]["Layers"][index])
        assert blob is not None
        with tarfile.open(fileobj=blob) as layer:
            return {m.name.rstrip("/"): (m.mode & 0o7777, m.uid, m.gid) for m in layer}


STEPS = "COPY --link dir /opt/x/dir\nCOPY --link --chown=5:6 --chmod=600 local.txt /etc/\n"


def test_the_same_layer_over_another_base(strata: Strata, busybox: str, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, f"FROM {BUSYBOX}\n{STEPS}")
    strata("build", "-t", "link:a", str(ctx))
    (ctx / "Dockerfile").write_text(f"FROM {BUSYBOX}\nRUN mkdir -m 700 /opt && echo other > /base\n{STEPS}")
    strata("build", "-t", "link:b", str(ctx))
    a, b = _layers(strata, "link:a"), _layers(strata, "link:b")
    assert len(a) == 3 and len(b) == 4 and a[0] == b[0] and a[1] != b[1]
    assert a[1:] == b[2:]  # the linked layers do not depend on what is below them
    members = _layer_members(strata, "link:a", tmp_path, 1)
    assert members == {"opt": (0o755, 0, 0), "opt/x": (0o755, 0, 0), "opt/x/dir": (0o755, 0, 0),
                       "opt/x/dir/f": (0o644, 0, 0), "opt/x/dir/sub": (0o755, 0, 0),
                       "opt/x/dir/sub/g": (0o644, 0, 0)}  # fmt: skip
    assert _layer_members(strata, "link:a", tmp_path, 2) == {"etc": (0o755, 0, 0), "etc/local.txt": (0o600, 5, 6)}
    # in link:b the layer's /opt (0755) is laid over the base's 0700 one, as any layer's directory is
    shown = strata("run", "--rm", "link:b", "sh", "-c", "stat -c '%a %n' /opt /opt/x/dir/sub/g; cat /base /etc/local.txt")
    assert shown.stdout == "755 /opt\n644 /opt/x/dir/sub/g\nother\nlocal\n"
    again = strata("build", "-t", "link:b", str(ctx))  # nothing changed: every step from the cache
    assert again.stdout.count(" ---> Using cache") == 3


def test_a_symlink_in_the_base_is_not_followed(strata: Strata, busybox: str, tmp_path: Path) -> None:
    base = f"FROM {BUSYBOX}\nRUN mkdir /elsewhere && ln -s /elsewhere /opt\n"
    ctx = _ctx(tmp_path, base + "COPY dir /opt/dir\n")
    strata("build", "-t", "nolink:1", str(ctx))
    (ctx / "Dockerfile").write_text(base + "COPY --link dir /opt/dir\n")
    strata("build", "-t", "link:1", str(ctx))
    plain, _ = _tree(strata, "nolink:1", tmp_path)
    linked, _ = _tree(strata, "link:1", tmp_path)
    assert plain["opt"][0] == "link" and "elsewhere/dir/f" in plain  # a plain COPY follows it
    assert linked["opt"] == ("dir", 0o755, 0, 0, "") and "opt/dir/f" in linked and "elsewhere/dir" not in linked


def _tree(strata: Strata, ref: str, tmp_path: Path) -> tuple[dict[str, tuple[str, int, int, int, str]], dict[str, object]]:
    archive = tmp_path / f"{ref.replace(':', '-')}-tree.tar"
    strata("save", "-o", str(archive), ref)
    return read_image(archive)


def test_link_flag_values(strata: Strata, busybox: str, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, f"FROM {BUSYBOX}\nCOPY --link=maybe local.txt /x\n")
    r = strata("build", str(ctx), check=False)
    assert (r.returncode, r.stderr) == (1, "Error: expecting boolean value for flag link, not: maybe\n")
    (ctx / "Dockerfile").write_text(f"FROM {BUSYBOX}\nRUN ln -s /tmp /opt\nCOPY --link=false local.txt /opt/\n")
    strata("build", "-t", "linkfalse:1", str(ctx))  # a plain COPY: through the base's symlink
    assert strata("run", "--rm", "linkfalse:1", "cat", "/tmp/local.txt").stdout == "local\n"


def test_add_link_extracts_into_its_own_layer(strata: Strata, busybox: str, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, f"FROM {BUSYBOX}\nRUN mkdir -m 700 /srv\nADD --link pkg.tar /srv/\n")
    subprocess.run(["tar", "-cf", str(ctx / "pkg.tar"), "-C", str(ctx), "dir"], check=True)
    strata("build", "-t", "addlink:1", str(ctx))
    members = _layer_members(strata, "addlink:1", tmp_path, 2)
    assert set(members) == {"srv", "srv/dir", "srv/dir/f", "srv/dir/sub", "srv/dir/sub/g"}
    assert members["srv"] == (0o755, 0, 0)  # made in the empty tree, not the base's 0700 one


def test_link_chown_by_name(strata: Strata, busybox: str, tmp_path: Path) -> None:
    """A user name is looked up in the stage's image (the copy itself never reads it)."""
    users = 'RUN echo "app:x:1234:4321::/:/bin/sh" >> /etc/passwd && echo "app:x:4321:" >> /etc/group\n'
    ctx = _ctx(tmp_path, f"FROM {BUSYBOX}\n{users}COPY --link --chown=app dir /opt/app\n")
    strata("build", "-t", "linkchown:1", str(ctx))
    shown = strata("run", "--rm", "linkchown:1", "stat", "-c", "%u:%g %n", "/opt", "/opt/app", "/opt/app/sub/g").stdout
    assert shown == "1234:4321 /opt\n1234:4321 /opt/app\n1234:4321 /opt/app/sub/g\n"
    (ctx / "Dockerfile").write_text(f"FROM {BUSYBOX}\nCOPY --link --chown=app dir /opt/app\n")
    r = strata("build", str(ctx), check=False)
    assert (r.returncode, r.stderr) == (
        1, "Error: unable to convert uid/gid chown string to host mapping: can't find uid for user app: no such user: app\n"
    )  # fmt: skip
