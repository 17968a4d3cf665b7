"""A rootless build adopts its steps' upper dirs as their unpacked layers (the kernel's overlay with
``userxattr``: ``user.overlay.opaque`` marks and 0/0 whiteouts, as the rootless unpack writes them),
each exactly a fresh unpack of its stored blob; where fuse-overlayfs mounted a step's rootfs, nothing
is adopted (its upper dir has markers of its own): the layer is unpacked from its blob as before."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from rootlesshelpers import User, import_busybox

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(not Path("/bin/busybox").is_file(), reason="needs busybox-static"),
]

DOCKERFILE = """FROM adopt:base
RUN busybox mkdir -p /a/b && echo one > /a/b/f && busybox ln /a/b/f /a/hl && busybox ln -s b/f /a/sl \
 && busybox chmod 4755 /a/b/f && chown 1000:1000 /a/b/f && rm /etc/passwd && rm -r /var/www \
 && mkdir /var/www && echo new > /var/www/new && touch -d @1700000000 /a/t
COPY data.txt /a/
RUN rm -r /a/b && mkdir /a/b && echo two > /a/b/g && cat /a/hl /a/data.txt > /a/out
"""

# run in the user's namespace (``strata unshare``): each built layer's directory against a fresh unpack
CHECK = """
import hashlib, os, shutil, stat, tempfile
from pathlib import Path
from strata.archive import apply_layer
from strata.engine import Engine

def tree(root):
    out = {}
    def walk(path, rel):
        stats = {n: os.lstat(path / n) for n in os.listdir(path)}
        for name, st in sorted(stats.items()):
            sub, child = rel + "/" + name, path / name
            kind = stat.S_IFMT(st.st_mode)
            whiteout = kind == stat.S_IFCHR and st.st_rdev == 0
            xattrs = {k: os.getxattr(child, k, follow_symlinks=False)
                      for k in sorted(os.listxattr(child, follow_symlinks=False))}
            entry = [kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_rdev, xattrs,
                     None if whiteout else (st.st_mtime_ns, st.st_atime_ns if ATIMES else 0)]
            if kind == stat.S_IFREG:
                entry += [st.st_nlink, hashlib.sha256(child.read_bytes()).hexdigest()]
            elif kind == stat.S_IFLNK:
                entry.append(os.readlink(child))
            out[sub] = entry
            if kind == stat.S_IFDIR:
                walk(child, sub)
    walk(root, "")
    return out

root = Path(os.environ["STRATA_ROOT"])
engine = Engine.open(root)
marks = []
for diff_id, blob in engine.meta.image_layers(engine.resolve_image("REF"))[1:]:
    adopted = engine.store.layer_dir(diff_id)
    if not adopted.is_dir():
        print("missing", end=" ")
        continue
    scratch = Path(tempfile.mkdtemp(dir=root / "tmp"))
    with open(engine.store.blob_path(blob), "rb") as f:
        apply_layer(f, scratch / "d", whiteouts="overlay", devices="make", overlay_xattr_prefix="user.overlay.")
    got, want = tree(adopted), tree(scratch / "d")
    shutil.rmtree(scratch)
    print("same" if got == want else "differs", end=" ")
    for sub, entry in got.items():
        if entry[5].get("user.overlay.opaque") == b"y" or (entry[0] == stat.S_IFCHR and entry[4] == 0):
            marks.append(sub)
engine.close()
print(sorted(marks))
"""


def _build(user: User, tag: str, *flags: str) -> None:
    ctx = user.home / f"ctx-{tag.replace(':', '-')}"
    ctx.mkdir()
    (ctx / "data.txt").write_text("from the context\n")
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    shutil.chown(ctx, user.uid, user.gid)
    for p in ctx.iterdir():
        shutil.chown(p, user.uid, user.gid)
    user.strata("build", "-q", "--network", "none", *flags, "-t", tag, str(ctx), timeout=300)


def _check(user: User, tag: str, atimes: bool = True) -> str:
    script = CHECK.replace("REF", tag).replace("ATIMES", str(atimes))
    return user.strata("unshare", str(user.python), "-c", script).stdout


def test_rootless_build_adopts_kernel_overlay_upper_dirs(user: User) -> None:
    import_busybox(user, "adopt:base")
    _build(user, "adopt:kernel")
    # every step's layer dir is there (the last one too: only an adoption makes it, no step needs its
    # unpack) and exactly its blob unpacked; the first RUN's opaque dir and whiteout are the overlay's
    assert _check(user, "adopt:kernel") == "same same same ['/a/b', '/etc/passwd', '/var/www']\n"
    out = user.strata("run", "--rm", "--network", "none", "adopt:kernel", "sh", "-c",
                      "cat /a/out; ls /var/www; ls /a/b; stat -c %u /a/hl")  # fmt: skip
    assert out.stdout == "one\nfrom the context\nnew\ng\n1000\n"
    assert user.strata("ps", "-aq").stdout == ""


@pytest.mark.skipif(shutil.which("fuse-overlayfs") is None, reason="needs fuse-overlayfs")
def test_rootless_build_on_fuse_overlayfs_unpacks_instead(user: User) -> None:
    if user.strata("images", "-q", "adopt:base").stdout == "":
        import_busybox(user, "adopt:base")
    user.extra_env = {"STRATA_OVERLAY_MOUNT_PROGRAM": "fuse-overlayfs"}
    try:
        _build(user, "adopt:fuse", "--no-cache")
    finally:
        user.extra_env = {}
    # the steps before the last were unpacked from their blobs for the next step; the last one never
    # (atimes aside: fuse-overlayfs reads its lowers without O_NOATIME, as the next steps' cat did)
    # (fuse-overlayfs marks the directories it makes opaque: the marks are not the kernel's)
    assert _check(user, "adopt:fuse", atimes=False).startswith("same same missing [")
    out = user.strata("run", "--rm", "--network", "none", "adopt:fuse", "sh", "-c", "cat /a/out; ls /var/www")
    assert out.stdout == "one\nfrom the context\nnew\n"
    assert user.strata("ps", "-aq").stdout == ""
