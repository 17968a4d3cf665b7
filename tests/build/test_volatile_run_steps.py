"""A RUN step's container has its root mounted ``volatile`` (its upper dir is adopted after a sync of
the store's filesystem, or discarded: its unmount need not sync the whole filesystem), as the COPY,
ADD and WORKDIR step roots; a container the user runs from the built image is not. Seen from inside,
in the root mount's options of /proc/self/mountinfo. The built image is the same either way."""

from __future__ import annotations

from pathlib import Path

from build_helpers import Strata

ROOT_OPTS = "awk '$5 == \"/\" {print $NF}' /proc/self/mountinfo | tr , '\\n' | grep -cxE '(fsync=)?volatile' || true"


def test_run_steps_mount_volatile_user_containers_do_not(strata: Strata, busybox: str, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM {busybox}\nRUN echo \"step volatile: $({ROOT_OPTS})\" && echo kept > /kept\nCMD [\"cat\", \"/kept\"]\n"
    )
    out = strata("build", "--network", "none", "-t", "volatilerun/t:1", str(ctx)).stdout
    assert "step volatile: 1\n" in out, out
    assert strata("run", "--rm", "volatilerun/t:1").stdout == "kept\n"
    assert strata("run", "--rm", "volatilerun/t:1", "sh", "-c", ROOT_OPTS).stdout == "0\n"
    assert strata("ps", "-aq").stdout == ""
    strata("rmi", "volatilerun/t:1")
