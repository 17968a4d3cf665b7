"""What the corpus does not cover, built by an unprivileged user and by root from the same context:
``COPY --link``, ``RUN --mount=type=bind,from=``/``cache``/``tmpfs``, ``COPY --chown`` by name with
``--chmod``, ``ADD`` of a local archive with its owners, ``USER`` by name, a directory removed and made
again, heredocs; on the kernel's overlay and on fuse-overlayfs: the same layers (times aside), files,
config, history and build output as root's. Nothing the steps write depends on when they ran (``ls -l``'s
minute of a file made by the other build, a minute apart on a loaded machine, made /out1 differ)."""

from __future__ import annotations

import io
import os
import sys
import tarfile
from pathlib import Path

import pytest
from rootlesshelpers import User

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_rootless_corpus import _as_root, _layers, _structure

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "build"))
from imagetree import config_view, history_view, read_image

pytestmark = pytest.mark.timeout(900)

BUSYBOX = "strata-test/busybox:latest"
DOCKERFILE = f"""FROM {BUSYBOX} AS src
RUN mkdir -p /s/a && echo 1 > /s/a/f && echo 'bob:x:1234:1234::/home/bob:/bin/sh' >> /etc/passwd \\
 && echo 'bob:x:1234:' >> /etc/group && chown 1234:1234 /s/a/f && ln -s a/f /s/l
FROM {BUSYBOX}
COPY --from=src /etc/passwd /etc/group /etc/
COPY --link --from=src /s /link/
RUN --mount=type=bind,from=src,source=/s,target=/mnt cat /mnt/a/f > /out1 && stat -c '%n %A %h %u %g %s' /mnt/a/* >> /out1
RUN --mount=type=cache,target=/cache echo x > /cache/x && ls /cache > /out2
RUN --mount=type=tmpfs,target=/t touch /t/a && ls /t > /out3
COPY --chown=bob:bob --chmod=0600 Dockerfile /df
ADD data.tar /unpacked/
RUN mkdir -p /home/bob && chown bob /home/bob && rm -rf /var && mkdir /var && echo v > /var/v
USER bob
WORKDIR /home/bob/w
RUN id > /home/bob/id && cd /home/bob && touch mine && ln -s mine l && mkdir -p d/e
RUN <<EOT
echo heredoc > /home/bob/h
EOT
"""


@pytest.mark.parametrize("program", ["", "fuse-overlayfs"])
def test_rootless_build_features_as_roots(user: User, program: str, tmp_path: Path) -> None:
    import peers

    if os.geteuid() != 0:
        pytest.skip("needs root")
    store = tmp_path / "store"
    bb = peers.busybox_rootfs_tar(user.home / f"bb-features{program}.tar")
    os.chown(bb, user.uid, user.gid)
    _as_root(store, "import", "-c", 'CMD ["/bin/sh"]', str(bb), BUSYBOX)
    if user.strata("images", "-q", BUSYBOX).stdout == "":
        user.strata("import", "-c", 'CMD ["/bin/sh"]', str(bb), BUSYBOX)
    ctx = user.home / f"features{program}"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    with tarfile.open(ctx / "data.tar", "w") as tar:
        for name, uid in (("x", 0), ("x/y", 7), ("x/z", 1234)):
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid = 1_000_000_000, uid, uid
            if name == "x":
                info.type, info.mode = tarfile.DIRTYPE, 0o750
                tar.addfile(info)
            else:
                info.size, info.mode = 2, 0o640
                tar.addfile(info, io.BytesIO(b"y\n"))
    for p in [ctx, *ctx.iterdir()]:
        os.chown(p, user.uid, user.gid)
    cold = ("build", "--network", "none", "--no-cache", "-t", "features:1", str(ctx))
    root_out = _as_root(store, *cold).stdout
    _as_root(store, "save", "-o", str(tmp_path / "root.tar"), "features:1")
    user.extra_env = {"STRATA_OVERLAY_MOUNT_PROGRAM": program} if program else {}
    try:
        out = user.strata(*cold, timeout=600).stdout
    finally:
        user.extra_env = {}
    user.strata("save", "-o", str(ctx / "rootless.tar"), "features:1")
    tree, doc = read_image(ctx / "rootless.tar")
    root_tree, root_doc = read_image(tmp_path / "root.tar")
    assert tree == root_tree
    assert tree["unpacked/x/z"][1:4] == (0o640, 1234, 1234) and tree["df"][1:4] == (0o600, 1234, 1234)
    assert _layers(ctx / "rootless.tar") == _layers(tmp_path / "root.tar")
    assert config_view(doc) == config_view(root_doc)
    assert history_view(doc) == history_view(root_doc)
    assert _structure(out) == _structure(root_out)
    # nothing changed: every step from the cache, the same image
    image = user.strata("inspect", "-f", "{{.Id}}", "features:1").stdout
    user.extra_env = {"STRATA_OVERLAY_MOUNT_PROGRAM": program} if program else {}
    try:
        again = user.strata(*[a for a in cold if a != "--no-cache"], timeout=600).stdout
    finally:
        user.extra_env = {}
    steps = [line for line in again.splitlines() if line.startswith("Step ")]
    assert again.count(" ---> Using cache\n") == len(steps) - 2  # the two FROMs aside
    assert user.strata("inspect", "-f", "{{.Id}}", "features:1").stdout == image
    assert user.strata("ps", "-aq").stdout == ""
