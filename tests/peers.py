"""The real peers strata is tested against: Docker 20.10, CNCF distribution, skopeo and podman.

Loaded as a pytest plugin by ``tests/conftest.py``. Every peer is Debian's package, installed when
missing (:func:`ensure_debs`) and started privately: its own directories under a temporary folder,
its own unix socket or loopback port, nothing shared with the machine's default engine
(``/var/run/docker.sock``, ``/var/lib/docker``, ``/etc/docker/daemon.json``, ``~/.docker``,
podman's default storage). Everything is stopped and removed afterwards.

Session-scoped fixtures (a test using any of them is marked ``peers`` automatically):

``dockerd``                    :class:`Dockerd` -- ``.run("images")``, ``.socket``, ``.env``
``docker_busybox``             ``str`` -- a busybox image imported into ``dockerd`` (``strata-test/busybox:latest``)
``distribution_registry``      :class:`Registry` -- plain HTTP, no auth, delete enabled
``distribution_registry_tls``  :class:`Registry` -- HTTPS (own CA) + htpasswd basic auth
``registry_factory``           ``Callable[..., Registry]`` -- more registries, stopped at session end
``skopeo``                     :class:`Skopeo` -- ``skopeo("copy", src, dst)`` -> CompletedProcess
``podman``                     :class:`Podman` -- ``podman("pull", ref)``, isolated storage
``busybox_tar``                ``Path`` -- a tiny busybox rootfs tarball (``docker import`` / ``strata import``)

Example::

    def test_strata_save_loads_in_docker(dockerd, distribution_registry, tmp_path):
        dockerd.run("load", "-i", str(tmp_path / "saved.tar"))          # CompletedProcess (text)
        out = dockerd.run("run", "--rm", "--network", "none", "img:1", "echo", "hi").stdout
        status, headers, body = distribution_registry.request("GET", "/v2/_catalog")
        # TLS registry: .ca_path (PEM), .cert_dir (skopeo/podman --cert-dir), .username/.password;
        # dockerd treats 127.0.0.0/8 as insecure, so `docker login/push/pull` work without certs.d.
        # skopeo: --tls-verify=false (HTTP); podman: podman.trust_insecure(reg.host) first.

The same code is usable without pytest (benchmarks, scripts): :func:`start_dockerd`,
:func:`start_registry`, :func:`make_skopeo`, :func:`make_podman`, :func:`make_busybox_rootfs`,
:func:`busybox_rootfs_tar`; each returned object has ``close()`` and works as a context manager.
Peers left behind by a process that died are removed by :func:`reap_stale_peers` (run on start).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import fcntl
import ipaddress
import os
import resource
import secrets
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "BUSYBOX_APPLETS",
    "DOCKERD_BIN",
    "DOCKER_BIN",
    "PODMAN_BIN",
    "REGISTRY_BIN",
    "SKOPEO_BIN",
    "Dockerd",
    "PeerCommandError",
    "PeerUnavailable",
    "Podman",
    "Registry",
    "Skopeo",
    "busybox_binary",
    "busybox_rootfs_tar",
    "ensure_debs",
    "free_port",
    "make_busybox_rootfs",
    "make_ca",
    "make_podman",
    "make_skopeo",
    "peer_tmpdir",
    "reap_stale_peers",
    "start_dockerd",
    "start_registry",
]

DOCKERD_BIN = "/usr/sbin/dockerd"
DOCKER_BIN = "/usr/bin/docker"  # Debian's 20.10 client; /usr/local/bin/docker may be a newer client
REGISTRY_BIN = "/usr/bin/docker-registry"
SKOPEO_BIN = "/usr/bin/skopeo"
PODMAN_BIN = "/usr/bin/podman"
APT_LOCK = Path("/tmp/strata-peers-apt.lock")
PEER_FIXTURES = frozenset(
    {
        "dockerd",
        "docker_busybox",
        "distribution_registry",
        "distribution_registry_tls",
        "registry_factory",
        "skopeo",
        "podman",
    }
)

BUSYBOX_APPLETS: tuple[str, ...] = (
    "sh", "ash", "ls", "cat", "echo", "touch", "true", "false", "mkdir", "rm", "rmdir", "cp", "mv",
    "ln", "env", "sleep", "id", "printf", "test", "[", "grep", "sed", "head", "tail", "wc", "hostname",
    "pwd", "chmod", "chown", "stat", "find", "sort", "uname", "date", "readlink", "du", "df", "xargs",
    "dd", "tee", "basename", "dirname", "mount", "ps", "kill", "md5sum", "sha256sum", "tar", "gzip",
    "vi", "which", "whoami", "yes", "seq", "cut", "tr", "uniq", "diff", "awk", "nc", "wget",
)  # fmt: skip

_FIXED_MTIME = 1_700_000_000  # deterministic tarballs: same bytes, same digest, every run


class PeerUnavailable(RuntimeError):
    """A peer tool is missing and could not be installed (tests skip on this)."""


class PeerCommandError(subprocess.CalledProcessError):
    """A peer command failed; ``str()`` carries its stderr so test failures explain themselves."""

    def __str__(self) -> str:
        out = self.stderr if isinstance(self.stderr, str) else ""
        return f"{super().__str__()}\nstderr:\n{out.strip()}"


# ---------------------------------------------------------------------------------------------
# installation


def _deb_installed(pkg: str) -> bool:
    res = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True, check=False
    )
    return res.returncode == 0 and res.stdout.strip().endswith(" installed")


def _apt_lists_present() -> bool:
    lists = Path("/var/lib/apt/lists")
    return lists.is_dir() and any(p.name.endswith("Packages") for p in lists.iterdir())


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    argv = ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=600", *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=1800)


def ensure_debs(*pkgs: str) -> None:
    """Install the Debian packages that are missing; raise :class:`PeerUnavailable` if that fails.

    A file lock serialises parallel test processes; apt's own lock wait covers other apt users.
    """
    if not [p for p in pkgs if not _deb_installed(p)]:
        return
    if os.geteuid() != 0:
        raise PeerUnavailable(f"Debian packages {' '.join(pkgs)} missing and not root to install them")
    APT_LOCK.touch(exist_ok=True)
    with APT_LOCK.open("r+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = [p for p in pkgs if not _deb_installed(p)]  # another process may have done it
        if not missing:
            return
        if not _apt_lists_present():
            _apt("update")
        install = ("install", "-y", "--no-install-recommends", *missing)
        res = _apt(*install)
        if res.returncode != 0:
            _apt("update")
            res = _apt(*install)
        if res.returncode != 0:
            tail = (res.stderr or res.stdout).strip().splitlines()[-5:]
            raise PeerUnavailable(f"apt-get install {' '.join(missing)} failed: {' | '.join(tail)}")


def _require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise PeerUnavailable(f"{what} needs root")


# ---------------------------------------------------------------------------------------------
# small process / filesystem helpers


OWNER_FILE = ".strata-peer-owner"  # "<pid> <start time>" of the process that made the dir


def _process_start(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: start time in clock ticks since boot


def _owner_alive(owner: str) -> bool:
    pid, _, started = owner.partition(" ")
    return pid.isdigit() and _process_start(int(pid)) == started


def reap_stale_peers() -> list[Path]:
    """Stop and remove peers left behind by test or bench processes that died (kill -9, Ctrl-C twice).

    Only directories this module made (they hold the owner file) whose owner process is gone.
    """
    base = Path(os.environ.get("STRATA_PEERS_TMP", "/tmp"))
    reaped: list[Path] = []
    for owner_file in base.glob(f"s?*/{OWNER_FILE}"):
        try:
            owner = owner_file.read_text().strip()
        except OSError:
            continue
        if _owner_alive(owner):
            continue
        root = owner_file.parent
        _kill_pids(_pids_mentioning(f"{root}/"))
        _remove_tree(root)
        reaped.append(root)
    return reaped


def peer_tmpdir(prefix: str) -> Path:
    """A fresh directory for one peer; short paths (unix sockets must stay under ~100 chars)."""
    base = os.environ.get("STRATA_PEERS_TMP", "/tmp")
    root = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    (root / OWNER_FILE).write_text(f"{os.getpid()} {_process_start(os.getpid())}\n")
    return root


def free_port() -> int:
    """A loopback TCP port free right now (the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _spawn(argv: Sequence[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _stop_process(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()


def _pids_mentioning(marker: str) -> list[int]:
    """Live processes whose command line mentions ``marker`` (our unique temp dir)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(entry.name))
    return found


def _is_running(pid: int) -> bool:
    """Alive and not a zombie (zombies of reparented children may linger unreaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _kill_pids(pids: Sequence[int], timeout: float = 10.0) -> None:
    """SIGKILL each pid and wait until they are gone (or zombies)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while any(_is_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root).rstrip("/") + "/"
    points: list[str] = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point.startswith(prefix) or point == str(root):
                points.append(point)
    return points


def _remove_tree(root: Path) -> None:
    """Unmount whatever is still mounted below ``root`` (deepest first), then delete it."""
    for point in sorted(_mounts_under(root), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    shutil.rmtree(root, ignore_errors=True)


def _run(
    argv: Sequence[str],
    env: dict[str, str],
    *,
    check: bool,
    input: str | None,
    timeout: float,
    cwd: str | Path | None = None,
) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        list(argv), env=env, input=input, capture_output=True, text=True, timeout=timeout, cwd=cwd,
        check=False,
    )  # fmt: skip
    if check and res.returncode != 0:
        raise PeerCommandError(res.returncode, list(argv), res.stdout, res.stderr)
    return res


# ---------------------------------------------------------------------------------------------
# busybox rootfs


def _elf_is_static(path: Path) -> bool:
    """True when the ELF file has no PT_INTERP program header (no dynamic loader needed)."""
    with path.open("rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only; Debian's amd64/arm64
            return False
        endian = "<" if head[5] == 1 else ">"
        phoff = struct.unpack_from(endian + "Q", head, 0x20)[0]
        phentsize, phnum = struct.unpack_from(endian + "HH", head, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(struct.unpack_from(endian + "I", table, i * phentsize)[0] != 3 for i in range(phnum))


def busybox_binary() -> Path:
    """Debian's busybox-static binary (installed when missing)."""
    ensure_debs("busybox-static")
    for cand in (Path("/bin/busybox"), Path("/usr/bin/busybox")):
        if cand.is_file() and _elf_is_static(cand):
            return cand
    raise PeerUnavailable("no static /bin/busybox (is Debian's 'busybox' installed instead of busybox-static?)")


def make_busybox_rootfs(dest: str | Path, applets: Sequence[str] = BUSYBOX_APPLETS) -> Path:
    """Build a tiny rootfs in ``dest``: /bin/busybox, applet symlinks, /etc/passwd, empty dirs."""
    root = Path(dest)
    for d in ("bin", "etc", "tmp", "root", "proc", "sys", "dev", "var", "home"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    shutil.copy2(busybox_binary(), root / "bin" / "busybox")
    for applet in applets:
        link = root / "bin" / applet
        if not link.is_symlink():
            link.symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    (root / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    return root


def _tar_filter(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = _FIXED_MTIME
    return info


def busybox_rootfs_tar(
    path: str | Path,
    *,
    applets: Sequence[str] = BUSYBOX_APPLETS,
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Write a deterministic busybox rootfs tarball to ``path``; ``.gz``/``.bz2``/``.xz`` compress.

    ``extra_files`` maps paths inside the rootfs (``"etc/motd"``) to their content.
    """
    out = Path(path)
    mode = {".gz": "w:gz", ".tgz": "w:gz", ".bz2": "w:bz2", ".xz": "w:xz"}.get(out.suffix, "w")
    with tempfile.TemporaryDirectory(prefix="bbroot") as tmp:
        root = make_busybox_rootfs(tmp, applets)
        for rel, data in (extra_files or {}).items():
            target = root / rel.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        partial = out.with_name(out.name + ".part")
        with tarfile.open(partial, mode, format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            for member in sorted(p.relative_to(root).as_posix() for p in root.rglob("*")):
                tar.add(root / member, arcname=member, recursive=False, filter=_tar_filter)
        partial.replace(out)
    return out


# ---------------------------------------------------------------------------------------------
# dockerd


@dataclass
class Dockerd:
    """A private Docker 20.10 daemon; ``run()`` drives it with the matching 20.10 client."""

    root: Path
    socket: Path
    env: dict[str, str]  # the full environment for a docker client: os.environ + DOCKER_HOST/CONFIG
    process: subprocess.Popen[bytes]
    log_path: Path
    start_seconds: float = 0.0

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def data_root(self) -> Path:
        return self.root / "data"

    def argv(self, *args: str) -> list[str]:
        """``[docker, *args]`` with the matching 20.10 client (run it with ``env=self.env``)."""
        return [DOCKER_BIN, *args]

    def run(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        timeout: float = 300.0,
        cwd: str | Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """``docker ARGS...`` against this daemon (text output captured)."""
        return _run([DOCKER_BIN, *args], self.env, check=check, input=input, timeout=timeout, cwd=cwd)

    def import_busybox(self, ref: str = "strata-test/busybox:latest", cmd: str = '["/bin/sh"]') -> str:
        """``docker import`` a busybox rootfs as ``ref`` (with CMD ``cmd``); returns ``ref``."""
        tar = busybox_rootfs_tar(self.root / "busybox.tar")
        self.run("import", "-c", f"CMD {cmd}", str(tar), ref)
        return ref

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def close(self) -> None:
        """Remove containers, stop the daemon (SIGTERM, then wait), kill leftovers, delete dirs."""
        if self.process.poll() is None:
            ids = self.run("ps", "-aq", check=False, timeout=30).stdout.split()
            if ids:
                self.run("rm", "-f", *ids, check=False, timeout=60)
        _stop_process(self.process, timeout=30)
        _kill_pids(_pids_mentioning(f"{self.root}/"))  # containerd, shims left behind
        time.sleep(0.1)
        _remove_tree(self.root)

    def __enter__(self) -> Dockerd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _system_containerd_present() -> bool:
    return Path("/run/containerd/containerd.sock").exists()


def start_dockerd(timeout: float = 60.0, extra_args: Sequence[str] = ()) -> Dockerd:
    """Install docker.io when missing and start a private dockerd (``extra_args``: more daemon flags,
    e.g. ``--registry-mirror``); raises on failure."""
    _require_root("dockerd")
    ensure_debs("docker.io")
    reap_stale_peers()
    root = peer_tmpdir("sd")
    sock = root / "d.sock"
    (root / "client").mkdir()
    (root / "daemon.json").write_text("{}\n")
    tag = secrets.token_hex(6)  # containerd namespaces: ^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$
    argv = [
        DOCKERD_BIN,
        "--config-file", str(root / "daemon.json"),  # never the machine's /etc/docker/daemon.json
        "--data-root", str(root / "data"),
        "--exec-root", str(root / "exec"),
        "--pidfile", str(root / "dockerd.pid"),
        "--host", f"unix://{sock}",
        "--iptables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none",
        "--userland-proxy=false",
        "--insecure-registry", "127.0.0.0/8",
        # if a system containerd is running dockerd would share it: keep our objects apart
        "--containerd-namespace", f"strata-{tag}",
        "--containerd-plugins-namespace", f"strata-{tag}-plugins",
        *extra_args,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env.update(DOCKER_HOST=f"unix://{sock}", DOCKER_CONFIG=str(root / "client"))
    log = root / "dockerd.log"
    t0 = time.monotonic()
    proc = _spawn(argv, log, env={k: v for k, v in env.items() if k != "DOCKER_HOST"})
    daemon = Dockerd(root=root, socket=sock, env=env, process=proc, log_path=log)
    deadline = t0 + timeout
    while True:
        if proc.poll() is not None:
            tail = daemon.log_tail()
            daemon.close()
            raise RuntimeError(f"dockerd exited with {proc.returncode} while starting:\n{tail}")
        if sock.exists():
            res = daemon.run("version", "--format", "{{.Server.Version}}", check=False, timeout=10)
            if res.returncode == 0 and res.stdout.strip():
                break
        if time.monotonic() > deadline:
            tail = daemon.log_tail()
            daemon.close()
            raise RuntimeError(f"dockerd did not answer within {timeout}s:\n{tail}")
        time.sleep(0.05)
    daemon.start_seconds = time.monotonic() - t0
    return daemon


# ---------------------------------------------------------------------------------------------
# TLS material


@dataclass(frozen=True)
class CertFiles:
    ca: Path
    cert: Path
    key: Path


def make_ca(directory: str | Path, hosts: Sequence[str] = ("127.0.0.1", "localhost")) -> CertFiles:
    """A self-signed CA (``ca.crt``) and a server certificate for ``hosts`` signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "strata test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip

    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip

    files = CertFiles(ca=d / "ca.crt", cert=d / "server.crt", key=d / "server.key")
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files.key.chmod(0o600)
    return files


# ---------------------------------------------------------------------------------------------
# distribution registry


@dataclass
class Registry:
    """A private CNCF distribution 2.8 registry on 127.0.0.1."""

    root: Path
    host: str  # "127.0.0.1:PORT" -- what goes in image references
    scheme: str  # "http" or "https"
    process: subprocess.Popen[bytes]
    log_path: Path
    storage: Path
    username: str | None = None
    password: str | None = None
    ca_path: Path | None = None  # PEM of the CA that signed the server certificate (TLS only)
    cert_dir: Path | None = None  # a folder holding only ca.crt: skopeo/podman --cert-dir
    _docker_ca_dirs: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def port(self) -> int:
        return int(self.host.rsplit(":", 1)[1])

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @property
    def creds(self) -> tuple[str, str] | None:
        return (self.username, self.password) if self.username and self.password else None

    def auth_header(self) -> dict[str, str]:
        """``{"Authorization": "Basic …"}`` for the htpasswd user, ``{}`` without auth."""
        if not self.creds:
            return {}
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client context trusting this registry's CA (``None`` for plain HTTP)."""
        if self.ca_path is None:
            return None
        return ssl.create_default_context(cafile=str(self.ca_path))

    def request(
        self, method: str, path: str, *, auth: bool = True, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """One HTTP request to the registry: (status, headers, body); HTTP errors are returned too."""
        hdrs = {**(self.auth_header() if auth else {}), **(headers or {})}
        req = urllib.request.Request(self.url + path, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, context=self.ssl_context(), timeout=30) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as err:
            with err:
                return err.code, dict(err.headers.items()), err.read()

    def docker_trust(self) -> Path:
        """Put the CA into ``/etc/docker/certs.d/<host>/ca.crt`` (removed by ``close()``).

        Not needed for dockerd to talk to a loopback registry (Docker treats 127.0.0.0/8 as an
        insecure registry: TLS without verification, then plain HTTP); use it to test verified TLS.
        """
        if self.ca_path is None:
            raise ValueError("plain-HTTP registry has no CA")
        d = Path("/etc/docker/certs.d") / self.host
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.ca_path, d / "ca.crt")
        self._docker_ca_dirs.append(d)
        return d / "ca.crt"

    def close(self) -> None:
        _stop_process(self.process, timeout=10)
        for d in self._docker_ca_dirs:
            shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _htpasswd_line(user: str, password: str) -> str:
    import bcrypt

    hashed: bytes = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5))
    return f"{user}:{hashed.decode()}\n"


def _registry_config(root: Path, port: int, certs: CertFiles | None, htpasswd: Path | None) -> str:
    lines = [
        "version: 0.1",
        "log:",
        "  level: info",
        "  formatter: text",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {root / 'storage'}",
        "  delete:",
        "    enabled: true",
        "  maintenance:",
        "    uploadpurging:",
        "      enabled: false",
        "http:",
        f"  addr: 127.0.0.1:{port}",
        f"  secret: {secrets.token_hex(16)}",
    ]
    if certs:
        lines += ["  tls:", f"    certificate: {certs.cert}", f"    key: {certs.key}"]
    if htpasswd:
        lines += ["auth:", "  htpasswd:", "    realm: strata-test", f"    path: {htpasswd}"]
    return "\n".join(lines) + "\n"


def _registry_ready(reg: Registry) -> bool:
    try:
        status, _, _ = reg.request("GET", "/v2/", auth=False)
    except (OSError, ssl.SSLError):
        return False
    return status in (200, 401)


def start_registry(
    *, tls: bool = False, auth: bool = False, username: str = "strata", password: str | None = None,
    timeout: float = 30.0,
) -> Registry:  # fmt: skip
    """Install docker-registry when missing and start one on 127.0.0.1:<free port>.

    ``tls`` serves HTTPS with a certificate from a fresh CA (``Registry.ca_path``); ``auth`` turns on
    htpasswd basic auth for ``username`` / ``password`` (random when not given).
    """
    ensure_debs("docker-registry")
    reap_stale_peers()
    root = peer_tmpdir("sr")
    certs = make_ca(root / "certs") if tls else None
    cert_dir = None
    if certs:
        cert_dir = root / "trust"
        cert_dir.mkdir()
        shutil.copy2(certs.ca, cert_dir / "ca.crt")
    htpasswd = None
    if auth:
        password = password or secrets.token_urlsafe(12)
        htpasswd = root / "htpasswd"
        htpasswd.write_text(_htpasswd_line(username, password))
    last_error = ""
    for _attempt in range(5):  # the free port may be taken between probe and bind: retry
        port = free_port()
        cfg = root / "config.yml"
        cfg.write_text(_registry_config(root, port, certs, htpasswd))
        log = root / "registry.log"
        proc = _spawn([REGISTRY_BIN, "serve", str(cfg)], log)
        reg = Registry(
            root=root, host=f"127.0.0.1:{port}", scheme="https" if tls else "http", process=proc,
            log_path=log, storage=root / "storage", username=username if auth else None,
            password=password if auth else None, ca_path=certs.ca if certs else None, cert_dir=cert_dir,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            if _registry_ready(reg):
                return reg
            time.sleep(0.05)
        _stop_process(proc, timeout=5)
        last_error = log.read_text(errors="replace")[-2000:]
    shutil.rmtree(root, ignore_errors=True)
    raise RuntimeError(f"docker-registry did not start:\n{last_error}")


# ---------------------------------------------------------------------------------------------
# skopeo and podman


_POLICY = '{"default": [{"type": "insecureAcceptAnything"}]}\n'
_REGISTRIES_CONF = 'unqualified-search-registries = []\nshort-name-mode = "permissive"\n'


@dataclass
class Skopeo:
    """``skopeo(*args)`` runs skopeo with its own policy, registries.conf and auth file."""

    root: Path
    env: dict[str, str]

    @property
    def base_argv(self) -> list[str]:
        return [SKOPEO_BIN, "--policy", str(self.root / "policy.json")]

    def __call__(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 300.0
    ) -> subprocess.CompletedProcess[str]:
        return _run([*self.base_argv, *args], self.env, check=check, input=input, timeout=timeout)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Skopeo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _containers_env(root: Path) -> dict[str, str]:
    (root / "policy.json").write_text(_POLICY)
    (root / "registries.conf").write_text(_REGISTRIES_CONF)
    (root / "tmp").mkdir(exist_ok=True)
    (root / "auth.json").write_text('{"auths": {}}\n')  # podman refuses a named auth file that is absent
    env = dict(os.environ)
    env.update(
        CONTAINERS_REGISTRIES_CONF=str(root / "registries.conf"),
        REGISTRY_AUTH_FILE=str(root / "auth.json"),
        TMPDIR=str(root / "tmp"),
    )
    return env


def make_skopeo() -> Skopeo:
    """Install skopeo when missing; a runner isolated from the machine's config."""
    ensure_debs("skopeo")
    root = peer_tmpdir("ss")
    return Skopeo(root=root, env=_containers_env(root))


def _storage_driver(path: Path) -> str:
    res = subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, check=False)
    return "vfs" if res.stdout.strip() in ("overlayfs", "tmpfs") else "overlay"


def _current_ulimits() -> str:
    """nofile/nproc limits that an OCI runtime under podman may set without CAP_SYS_RESOURCE.

    Podman asks for 1048576 open files by default, and conmon runs with RLIMIT_NPROC capped at
    the kernel's pid_max, so neither the defaults nor ``--ulimit host`` work where the sandbox
    lacks CAP_SYS_RESOURCE.
    """
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    items = []
    for name, which, cap in (
        ("nofile", resource.RLIMIT_NOFILE, None),
        ("nproc", resource.RLIMIT_NPROC, pid_max),
    ):
        values = []
        for v in resource.getrlimit(which):
            if cap is not None and (v == resource.RLIM_INFINITY or v > cap):
                v = cap
            values.append("-1" if v == resource.RLIM_INFINITY else str(v))
        items.append(f'"{name}={values[0]}:{values[1]}"')
    return "[" + ", ".join(items) + "]"


@dataclass
class Podman:
    """``podman(*args)`` runs podman on private storage (``--root``/``--runroot`` under ``root``)."""

    root: Path
    env: dict[str, str]
    insecure_registries: list[str] = field(default_factory=list)

    @property
    def base_argv(self) -> list[str]:
        return [
            PODMAN_BIN,
            "--root", str(self.root / "storage"),
            "--runroot", str(self.root / "run"),
            "--cgroup-manager", "cgroupfs",
            "--events-backend", "file",
            "--tmpdir", str(self.root / "libpod-tmp"),
        ]  # fmt: skip

    def __call__(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 300.0
    ) -> subprocess.CompletedProcess[str]:
        return _run([*self.base_argv, *args], self.env, check=check, input=input, timeout=timeout)

    def trust_insecure(self, host: str) -> None:
        """Mark ``host`` (``127.0.0.1:PORT``) insecure in our registries.conf: plain HTTP / no TLS check."""
        if host in self.insecure_registries:
            return
        self.insecure_registries.append(host)
        conf = _REGISTRIES_CONF + "".join(
            f'\n[[registry]]\nlocation = "{h}"\ninsecure = true\n' for h in self.insecure_registries
        )
        (self.root / "registries.conf").write_text(conf)

    def close(self) -> None:
        self("rm", "-af", check=False, timeout=60)
        _kill_pids(_pids_mentioning(f"{self.root}/"))  # conmon of anything left
        _remove_tree(self.root)

    def __enter__(self) -> Podman:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _runtime_line() -> str:
    """Prefer runc (crun 1.8 refuses cgroup v1 hosts with a cgroup2 mount: "hybrid mode")."""
    runc = shutil.which("runc") or ("/usr/sbin/runc" if Path("/usr/sbin/runc").exists() else None)
    return 'runtime = "runc"\n' if runc else ""


def make_podman() -> Podman:
    """Install podman when missing; a runner on isolated storage, config and auth."""
    _require_root("podman")
    ensure_debs("podman", "runc")
    root = peer_tmpdir("sp")
    env = _containers_env(root)
    driver = _storage_driver(root)
    (root / "storage.conf").write_text(
        f'[storage]\ndriver = "{driver}"\ngraphroot = "{root / "storage"}"\nrunroot = "{root / "run"}"\n'
    )
    (root / "containers.conf").write_text(
        "[containers]\n"
        'log_driver = "k8s-file"\n'
        f"default_ulimits = {_current_ulimits()}\n"  # podman asks for 1048576 files; not above ours
        "[engine]\n"
        'cgroup_manager = "cgroupfs"\n'
        f"{_runtime_line()}"
        'events_logger = "file"\n'
        f'events_logfile_path = "{root / "events.log"}"\n'
        f'tmp_dir = "{root / "libpod-tmp"}"\n'
        f'volume_path = "{root / "volumes"}"\n'
        "[network]\n"
        f'network_config_dir = "{root / "net"}"\n'
    )
    env.update(
        CONTAINERS_STORAGE_CONF=str(root / "storage.conf"),
        CONTAINERS_CONF=str(root / "containers.conf"),
    )
    return Podman(root=root, env=env)


# ---------------------------------------------------------------------------------------------
# pytest fixtures


def _or_skip(factory: Callable[[], Any]) -> Any:
    try:
        return factory()
    except PeerUnavailable as exc:
        pytest.skip(str(exc))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests using a peer fixture get the ``peers`` marker (``-m 'not peers'`` deselects them)."""
    for item in items:
        if PEER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.peers)


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deterministic busybox rootfs tarball (uncompressed)."""
    path: Path = _or_skip(lambda: busybox_rootfs_tar(tmp_path_factory.mktemp("busybox") / "rootfs.tar"))
    return path


@pytest.fixture(scope="session")
def dockerd() -> Iterator[Dockerd]:
    """A private Docker 20.10 daemon for the whole session."""
    daemon: Dockerd = _or_skip(start_dockerd)
    try:
        yield daemon
    finally:
        daemon.close()


@pytest.fixture(scope="session")
def docker_busybox(dockerd: Dockerd) -> str:
    """``strata-test/busybox:latest`` imported into ``dockerd`` (CMD ["/bin/sh"])."""
    ref: str = _or_skip(dockerd.import_busybox)
    return ref


@pytest.fixture(scope="session")
def registry_factory() -> Iterator[Callable[..., Registry]]:
    """``registry_factory(tls=False, auth=False)`` starts another registry, stopped at session end."""
    started: list[Registry] = []

    def factory(**kwargs: Any) -> Registry:
        reg: Registry = _or_skip(lambda: start_registry(**kwargs))
        started.append(reg)
        return reg

    try:
        yield factory
    finally:
        for reg in started:
            reg.close()


@pytest.fixture(scope="session")
def distribution_registry(registry_factory: Callable[..., Registry]) -> Registry:
    """Plain-HTTP distribution registry, no auth, delete enabled (shared: use unique repo names)."""
    return registry_factory()


@pytest.fixture(scope="session")
def distribution_registry_tls(registry_factory: Callable[..., Registry]) -> Registry:
    """HTTPS (self-signed CA at ``.ca_path``) + htpasswd (``.username``/``.password``) registry."""
    return registry_factory(tls=True, auth=True)


@pytest.fixture(scope="session")
def skopeo() -> Iterator[Skopeo]:
    runner: Skopeo = _or_skip(make_skopeo)
    try:
        yield runner
    finally:
        runner.close()


@pytest.fixture(scope="session")
def podman() -> Iterator[Podman]:
    runner: Podman = _or_skip(make_podman)
    try:
        yield runner
    finally:
        runner.close()
