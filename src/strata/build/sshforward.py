"""``--ssh default|<id>[=<socket>|<key>[,<key>…]]`` (Docker 20.10's CLI, BuildKit's agent provider:
its checks and words) and the agent a ``RUN --mount=type=ssh`` step sees: a socket of the step's own
(mode 0600 and root's unless the mount says), each connection to it forwarded to the given agent socket,
or to a private ``ssh-agent`` holding the given keys for the length of the step."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from strata.errors import StrataError

__all__ = ["DEFAULT_ID", "parse_ssh", "ssh_env", "ssh_socket"]

DEFAULT_ID = "default"


def parse_ssh(values: list[str], environ: dict[str, str] | None = None) -> dict[str, list[str]]:
    """``--ssh`` flags: id -> an agent socket (one) or private key files; Docker's CLI's errors
    (``could not parse ssh: [default]: …``)."""
    env = os.environ if environ is None else environ
    out: dict[str, list[str]] = {}
    for text in values:
        sid, sep, rest = text.partition("=")
        paths = rest.split(",") if sep else []
        try:
            if not paths or paths == [""]:
                paths = [env.get("SSH_AUTH_SOCK", "")]
            if paths[0] == "":
                raise StrataError("invalid empty ssh agent socket, make sure SSH_AUTH_SOCK is set")
            _check_source(paths)
            sid = sid or DEFAULT_ID
            if sid in out:
                raise StrataError(f"invalid duplicate ID {sid}")
        except StrataError as e:
            raise StrataError(f"could not parse ssh: [{' '.join(values)}]: {e}") from None
        out[sid] = [os.path.abspath(p) for p in paths]
    return out


def _check_source(paths: list[str]) -> None:
    """BuildKit's ``toAgentSource``: one socket, or private keys that parse (without a passphrase)."""
    socket_path = keys = False
    for path in paths:
        if socket_path:
            raise StrataError("only single socket allowed")
        try:
            mode = os.stat(path).st_mode
        except OSError as e:
            raise StrataError(f"stat {path}: {(e.strerror or '').lower()}") from None
        if stat.S_ISSOCK(mode):
            if keys:
                raise StrataError("invalid combination of keys and sockets")
            socket_path = True
            continue
        keys = True
        _check_key(path)


def _check_key(path: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise StrataError(f"failed to open {path}: open {path}: {(e.strerror or '').lower()}") from None
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        raise StrataError(f"failed to parse {path}: ssh-keygen (openssh-client) is not installed")
    r = subprocess.run([keygen, "-y", "-P", "", "-f", path], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        why = "this private key is passphrase protected" if "passphrase" in r.stderr else "no key found"
        raise StrataError(f"failed to parse {path}: ssh: {why}")


def ssh_env(env: list[str], targets: list[str]) -> list[str]:
    """A step's environment with ``SSH_AUTH_SOCK`` at its first ssh mount (unless it has one: BuildKit's)."""
    if not targets or any(e.partition("=")[0] == "SSH_AUTH_SOCK" for e in env):
        return env
    return [*env, f"SSH_AUTH_SOCK={targets[0]}"]


@contextmanager
def ssh_socket(paths: list[str], where: Path, uid: int, gid: int, mode: int) -> Iterator[Path]:
    """A listening socket at ``where/agent.sock`` (owner and mode as given) forwarding to the agent
    ``paths`` name (a socket, or keys loaded into an ``ssh-agent`` of its own), until the block ends."""
    with ExitStack() as stack:
        upstream = paths[0] if stat.S_ISSOCK(os.stat(paths[0]).st_mode) else stack.enter_context(_key_agent(paths))
        where.mkdir(mode=0o700)
        dir_fd = os.open(where, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        stack.callback(os.close, dir_fd)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stack.callback(listener.close)
        listener.bind(f"/proc/self/fd/{dir_fd}/agent.sock")  # a short address however deep ``where`` is
        os.chown("agent.sock", uid, gid, dir_fd=dir_fd)
        os.chmod("agent.sock", mode, dir_fd=dir_fd)
        listener.listen(16)
        thread = threading.Thread(target=_serve, args=(listener, upstream), daemon=True)
        thread.start()
        stack.callback(thread.join, 5)
        stack.callback(listener.shutdown, socket.SHUT_RDWR)  # wakes the accept: the thread ends
        yield where / "agent.sock"


def _serve(listener: socket.socket, upstream: str) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=_forward, args=(conn, upstream), daemon=True).start()


def _forward(conn: socket.socket, upstream: str) -> None:
    """One client connection to the agent, both ways, until either side closes."""
    with conn, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as up:
        fd = os.open(upstream, os.O_PATH | os.O_CLOEXEC)
        try:
            up.connect(f"/proc/self/fd/{fd}")
        except OSError:
            return
        finally:
            os.close(fd)
        back = threading.Thread(target=_pump, args=(up, conn), daemon=True)
        back.start()
        _pump(conn, up)
        back.join()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


@contextmanager
def _key_agent(keys: list[str]) -> Iterator[str]:
    """A private ``ssh-agent`` holding ``keys`` without comments (as BuildKit's in-process keyring
    holds them), stopped (its socket gone) when the block ends."""
    agent = shutil.which("ssh-agent")
    if agent is None:
        raise StrataError("ssh-agent (openssh-client) is not installed: --ssh with key files needs it")
    home = tempfile.mkdtemp(prefix="strata-ssh-")
    sock = os.path.join(home, "agent")
    proc = subprocess.Popen([agent, "-D", "-a", sock], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent())  # fmt: skip
    try:
        for _ in range(250):
            if os.path.exists(sock) or proc.poll() is not None:
                break
            threading.Event().wait(0.02)
        for n, key in enumerate(keys):
            _add_key(sock, _key_fields(key, os.path.join(home, f"key{n}")))
        yield sock
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(home, ignore_errors=True)


def _die_with_parent() -> Callable[[], object]:
    """What the agent's child runs before exec: SIGTERM when the build (its thread) dies, kill -9 too, so
    no agent holding the keys outlives the build. Looked up here: the child of a threaded build must not
    import or ``dlopen`` (a lock another thread held at the fork is never released there)."""
    import ctypes
    import functools
    import signal

    return functools.partial(ctypes.CDLL(None).prctl, 1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _key_fields(key: str, copy: str) -> bytes:
    """The private key's fields as the agent protocol sends them: a copy rewritten by ssh-keygen in
    OpenSSH's own format, unencrypted, with an empty comment; its private section without the check
    words, the (empty) comment and the padding."""
    import base64
    import struct

    shutil.copyfile(key, copy)
    os.chmod(copy, 0o600)
    for argv in (["-p", "-P", "", "-N", ""], ["-c", "-C", "", "-P", ""]):
        r = subprocess.run(["ssh-keygen", "-q", *argv, "-f", copy], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL)  # fmt: skip
        if r.returncode != 0:
            raise StrataError(f"failed to parse {key}: ssh: {r.stderr.strip() or 'no key found'}")
    text = Path(copy).read_text()
    data = base64.b64decode("".join(line for line in text.splitlines() if line and not line.startswith("-----")))
    pos = len(b"openssh-key-v1\0")
    for _ in range(3):  # cipher, kdf, kdf options
        pos += 4 + struct.unpack_from(">I", data, pos)[0]
    count = struct.unpack_from(">I", data, pos)[0]
    pos += 4
    for _ in range(count):
        pos += 4 + struct.unpack_from(">I", data, pos)[0]
    private = data[pos + 4 : pos + 4 + struct.unpack_from(">I", data, pos)[0]]
    pad = private[-1] if private and private[-1] < 8 and private.endswith(bytes(range(1, private[-1] + 1))) else 0
    body = private[8 : len(private) - pad]
    if not body.endswith(b"\0\0\0\0"):
        raise StrataError(f"failed to parse {key}: ssh: no key found")
    return body[:-4]


def _add_key(sock: str, fields: bytes) -> None:
    """SSH2_AGENTC_ADD_IDENTITY (17) with an empty comment; the agent answers SUCCESS (6)."""
    import struct

    msg = b"\x11" + fields + b"\0\0\0\0"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(sock)
        s.sendall(struct.pack(">I", len(msg)) + msg)
        answer = s.recv(5)
    if answer[4:5] != b"\x06":
        raise StrataError("failed to add key to agent: the agent refused it")
