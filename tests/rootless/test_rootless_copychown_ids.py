"""Rootless ``COPY --chown`` of an id beyond the user's subordinate ranges (70000 here, with 65536 ids):
Podman's error naming the id and the destination (not a bare ``Invalid argument``), nothing stored, the
store still works."""

from __future__ import annotations

import os

import pytest
from rootlesshelpers import User, import_busybox

pytestmark = pytest.mark.timeout(300)


def _words(path: str) -> str:
    return (f"Error: potentially insufficient UIDs or GIDs available in user namespace (requested 70000:70000 "
            f"for {path}): Check /etc/subuid and /etc/subgid if configured locally: lchown {path}: invalid argument\n")


@pytest.mark.parametrize(("line", "path"), [("COPY --chown=70000 f /f", "/f"),
                                            ("COPY --chown=70000:70000 f d/ /dir/", "/dir/f"),
                                            ("ADD --chown=70000 d /d2", "/d2")])
def test_rootless_copy_chown_beyond_the_subordinate_ids(user: User, line: str, path: str) -> None:
    import_busybox(user, "chownids:base")
    ctx = user.home / f"ctx-chown-{abs(hash(line))}"
    (ctx / "d").mkdir(parents=True)
    (ctx / "Dockerfile").write_text(f"FROM chownids:base\n{line}\n")
    (ctx / "f").write_text("f\n")
    (ctx / "d" / "g").write_text("g\n")
    for p in (ctx, ctx / "d", ctx / "d" / "g", ctx / "Dockerfile", ctx / "f"):
        os.chown(p, user.uid, user.gid)
    done = user.strata("build", "-q", "--network", "none", "-t", "chownids:bad", str(ctx), check=False)
    assert done.returncode == 1
    assert done.stderr.endswith(f"Step 2/2 : {line}\n{_words(path)}"), done.stderr
    assert user.strata("images", "-q", "chownids:bad").stdout == ""
    assert user.strata("ps", "-aq").stdout == ""
    # an id inside the ranges still works, and the store is as it was
    (ctx / "Dockerfile").write_text("FROM chownids:base\nCOPY --chown=1000:1000 f /f\n")
    user.strata("build", "-q", "--network", "none", "-t", "chownids:good", str(ctx))
    out = user.strata("run", "--rm", "--network", "none", "chownids:good", "stat", "-c", "%u:%g", "/f").stdout
    assert out == "1000:1000\n"
