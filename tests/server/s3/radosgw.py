"""A throwaway S3 endpoint on a real object store: Ceph's RADOS Gateway from Debian's packages.

One monitor, one OSD (memstore: data in memory, thrown away at the end), no manager, and radosgw on
127.0.0.1, all under one private temporary directory (nothing in /etc/ceph, cephx off, loopback only,
ports picked free). Start-up takes a few seconds. Shared by the test suite and scripts
(``make demo-scale``, benchmarks)::

    from server.s3.radosgw import start_radosgw        # with tests/ on sys.path
    with start_radosgw() as rgw:
        params = rgw.s3_params(rootdirectory="/reg")   # a storage.s3 mapping for strata or distribution
        bucket = rgw.new_bucket()                      # a fresh, empty bucket

For pytest, :func:`session_radosgw` gives one cluster per test session (stopped at exit); under
``CI=true`` a cluster that cannot start fails the test instead of skipping it.

Facts this relies on (Ceph 16 "pacific"): with cephx off radosgw must be told
``ms mon client mode = crc`` or it hangs; ``paxos propose interval`` makes a single monitor commit
map changes quickly; with one OSD, pools need size 1 and few placement groups.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from peers import PeerUnavailable, _remove_tree, ensure_debs, free_port, peer_tmpdir, reap_stale_peers

__all__ = ["DEBS", "Radosgw", "session_radosgw", "start_radosgw"]

DEBS = ("radosgw", "ceph-mon", "ceph-osd")
REGION = "us-east-1"
_DAEMONS = (("client.rgw.a", "radosgw"), ("osd.0", "ceph-osd"), ("mon.a", "ceph-mon"))  # stop order


@dataclass
class Radosgw:
    root: Path
    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    region: str = REGION
    buckets: list[str] = field(default_factory=list)

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=self.region, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"),
        )  # fmt: skip

    def new_bucket(self) -> str:
        name = f"b{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        self.buckets.append(name)
        return name

    def s3_params(self, bucket: str | None = None, **extra: Any) -> dict[str, Any]:
        """A ``storage.s3`` mapping (distribution's keys) for this endpoint."""
        params: dict[str, Any] = {
            "bucket": bucket or self.bucket, "region": self.region, "regionendpoint": self.endpoint,
            "accesskey": self.access_key, "secretkey": self.secret_key, "secure": False, "v4auth": True,
        }  # fmt: skip
        params.update(extra)
        return params

    def close(self) -> None:
        stop_daemons(self.root)
        _remove_tree(self.root)

    def __enter__(self) -> Radosgw:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _port_range_free(base: int, n: int) -> bool:
    for port in range(base, base + n):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _osd_ports() -> tuple[int, int]:
    for _ in range(50):
        base = random.randrange(20000, 40000, 50)
        if _port_range_free(base, 40):
            return base, base + 39
    raise PeerUnavailable("no free port range for the ceph OSD")


def _ceph_conf(root: Path, fsid: str, mon: str, osd_ports: tuple[int, int], rgw_port: int) -> str:
    return f"""[global]
fsid = {fsid}
mon host = {mon}
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind port min = {osd_ports[0]}
ms bind port max = {osd_ports[1]}
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
osd crush chooseleaf type = 0
paxos propose interval = 0.05
mon data avail warn = 2
mon data avail crit = 1
mon warn on insecure global id reclaim allowed = false
mon warn on pool no redundancy = false
run dir = {root}/run
admin socket = {root}/run/$name.asok
pid file = {root}/run/$name.pid
log file = {root}/log/$name.log
mon cluster log file = {root}/log/$cluster.$channel.log
mon data = {root}/data/mon.$id
osd data = {root}/data/osd.$id
osd objectstore = memstore
memstore device bytes = {8 << 30}
osd memory target = 1073741824
[client.rgw.a]
# tcp_nodelay: without it every response with a body waits ~40 ms for the client's delayed ACK
rgw frontends = beast endpoint=127.0.0.1:{rgw_port} tcp_nodelay=1
rgw thread pool size = 64
rgw gc obj min wait = 60
rgw gc processor period = 60
"""


def _run(root: Path, *argv: str, timeout: float = 60) -> str:
    res = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False,
                         stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    if res.returncode != 0:
        logs = "".join(
            f"\n--- {p.name}:\n" + "\n".join(p.read_text(errors="replace").splitlines()[-8:])
            for p in sorted((root / "log").glob("*.log"))
        )
        raise PeerUnavailable(f"{' '.join(argv[:3])} failed ({res.returncode}): {res.stderr.strip()}{logs}")
    return res.stdout


def _wait(what: str, ready: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    raise PeerUnavailable(f"{what} did not come up within {timeout:g}s")


def _rgw_answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(endpoint + "/", timeout=2) as resp:
            return b"ListAllMyBucketsResult" in resp.read()
    except OSError:
        return False


def _start_cluster(root: Path, rgw_port: int) -> None:
    for d in ("data/mon.a", "data/osd.0", "run", "log"):
        (root / d).mkdir(parents=True, exist_ok=True)
    fsid = str(uuid.uuid4())
    mon = f"[v2:127.0.0.1:{free_port()},v1:127.0.0.1:{free_port()}]"
    conf = root / "ceph.conf"
    conf.write_text(_ceph_conf(root, fsid, mon, _osd_ports(), rgw_port))
    c = str(conf)
    _run(root, "monmaptool", "--create", "--fsid", fsid, "--addv", "a", mon, str(root / "run/monmap"))
    _run(root, "ceph-mon", "-c", c, "-i", "a", "--mkfs", "--monmap", str(root / "run/monmap"))
    _run(root, "ceph-mon", "-c", c, "-i", "a")
    ceph = ("ceph", "-c", c, "--connect-timeout", "30")
    osd_uuid = str(uuid.uuid4())
    osd_id = _run(root, *ceph, "osd", "new", osd_uuid).strip()
    _run(root, "ceph-osd", "-c", c, "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid)
    _run(root, "ceph-osd", "-c", c, "-i", osd_id)
    _wait("ceph-osd", lambda: "1 up" in _run(root, *ceph, "osd", "stat"), 60)
    _run(root, "radosgw", "-c", c, "-n", "client.rgw.a")
    _wait("radosgw", lambda: _rgw_answers(f"http://127.0.0.1:{rgw_port}"), 60)


def _start_once(bucket: str) -> Radosgw:
    root = peer_tmpdir("srgw")
    rgw_port = free_port()
    try:
        _start_cluster(root, rgw_port)
        ak, sk = "STRATA" + secrets.token_hex(7).upper(), secrets.token_hex(20)
        _run(root, "radosgw-admin", "-c", str(root / "ceph.conf"), "user", "create", "--uid=strata",
             "--display-name=strata", f"--access-key={ak}", f"--secret-key={sk}")  # fmt: skip
        rgw = Radosgw(root, f"http://127.0.0.1:{rgw_port}", ak, sk, bucket)
        rgw.client().create_bucket(Bucket=bucket)
    except BaseException:
        stop_daemons(root)
        _remove_tree(root)
        raise
    return rgw


def start_radosgw(bucket: str = "strata", attempts: int = 3) -> Radosgw:
    """Install (if missing) and start a private cluster; raises ``PeerUnavailable`` if it cannot.

    Ports are picked free just before use; another process may take one first, so a failed start is
    tried again on new ports. Clusters left behind by dead test processes are removed first.
    """
    ensure_debs(*DEBS)
    if os.geteuid() != 0:
        raise PeerUnavailable("radosgw's cluster needs root")
    reap_stale_peers()
    for attempt in range(attempts):
        try:
            return _start_once(bucket)
        except PeerUnavailable:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_daemons(root: Path, timeout: float = 10.0) -> None:
    """SIGKILL the cluster's daemons (their data is thrown away), by the PIDs in its run/ folder."""
    for name, comm in _DAEMONS:
        pidfile = root / "run" / f"{name}.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().strip())
            if Path(f"/proc/{pid}/comm").read_text().strip() == comm:
                os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + timeout
                while _alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)


_SHARED: list[Radosgw] = []


def _stop_shared() -> None:
    while _SHARED:
        _SHARED.pop().close()


def session_radosgw() -> Radosgw:
    """One cluster for the whole pytest process (stopped at exit): skip, or fail under CI=true."""
    if not _SHARED:
        try:
            _SHARED.append(start_radosgw())
        except PeerUnavailable as exc:
            if os.environ.get("CI") == "true":
                pytest.fail(f"radosgw could not start: {exc}")
            pytest.skip(f"radosgw unavailable: {exc}")
        atexit.register(_stop_shared)
    return _SHARED[0]
