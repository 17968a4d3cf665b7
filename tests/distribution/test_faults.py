"""The client against a misbehaving registry: clear errors, retries where they make sense, and
nothing half-pulled in the store."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from strata.digest import Digest, digest_bytes
from strata.distribution.client import MAX_REDIRECTS, RegistryClient
from strata.distribution.credentials import Credentials
from strata.distribution.hosts import HostsConfig
from strata.errors import DigestMismatch, ManifestUnknown, TransportError, Unauthorized

from .conftest import StrataRun, config_json, gz_layer
from .faultserver import FaultRegistry

NO_CERTS = HostsConfig(certs_dirs=())


def _client(reg: FaultRegistry, creds: Credentials | None = None) -> RegistryClient:
    return RegistryClient(reg.host, creds, config=NO_CERTS)


def _blob(reg: FaultRegistry, size: int = 3 << 20) -> tuple[bytes, Digest]:
    data = os.urandom(size)
    return data, Digest.parse(reg.add_blob(data))


def test_blob_roundtrip_and_plain_http_fallback(fault_registry: FaultRegistry) -> None:
    data, dg = _blob(fault_registry)
    with _client(fault_registry) as c:
        assert c.open_blob("r", dg, len(data)).read() == data
        assert c.endpoint.scheme == "http"  # loopback: https tried first, then plain http


def test_wrong_digest_blob_is_refused(fault_registry: FaultRegistry) -> None:
    data, dg = _blob(fault_registry)
    fault_registry.faults[str(dg)] = "wrong"
    with _client(fault_registry) as c, pytest.raises(DigestMismatch, match=f"verification failed for digest {dg}"):
        c.open_blob("r", dg, len(data)).read()


def test_dropped_connection_resumes_with_range(fault_registry: FaultRegistry) -> None:
    data, dg = _blob(fault_registry, 4 << 20)
    fault_registry.faults[str(dg)] = "drop_once"
    with _client(fault_registry) as c:
        assert c.open_blob("r", dg, len(data)).read() == data
    ranges = [h.get("Range") for m, p, h in fault_registry.requests if p.endswith(str(dg)) and m == "GET"]
    assert ranges[0] is None and ranges[-1] is not None and ranges[-1].startswith("bytes=")
    assert int(ranges[-1][6:-1]) > 0


def test_truncated_blob_fails_clearly(fault_registry: FaultRegistry) -> None:
    data, dg = _blob(fault_registry, 1 << 20)
    fault_registry.faults[str(dg)] = "truncate"
    with _client(fault_registry) as c, pytest.raises((TransportError, DigestMismatch), match=str(dg)):
        r = c.open_blob("r", dg, len(data))
        r.max_resumes = 2
        r.read()


def test_redirected_blob_is_followed(fault_registry: FaultRegistry) -> None:
    data, dg = _blob(fault_registry, 100_000)
    fault_registry.faults[str(dg)] = "redirect"
    with _client(fault_registry) as c:
        assert c.open_blob("r", dg, len(data)).read() == data


def test_redirect_loop_stops(fault_registry: FaultRegistry) -> None:
    data, dg = _blob(fault_registry, 1000)
    fault_registry.faults[str(dg)] = "redirect_loop"
    with _client(fault_registry) as c, pytest.raises(TransportError, match=f"stopped after {MAX_REDIRECTS} redirects"):
        c.open_blob("r", dg, len(data)).read()


def test_429_retry_after_is_honoured(fault_registry: FaultRegistry) -> None:
    data, dg = _blob(fault_registry, 1000)
    fault_registry.faults[str(dg)] = "throttle"
    t0 = time.monotonic()
    with _client(fault_registry) as c:
        assert c.open_blob("r", dg, len(data)).read() == data
    assert time.monotonic() - t0 >= 1.9  # two 429s with Retry-After: 1


def test_manifest_over_4mib_is_refused(fault_registry: FaultRegistry) -> None:
    fault_registry.faults["r:big"] = "big"
    with _client(fault_registry) as c, pytest.raises(TransportError, match="manifest too big"):
        c.get_manifest("r", "big")


def test_unknown_manifest_in_dockers_words(fault_registry: FaultRegistry) -> None:
    with _client(fault_registry) as c, pytest.raises(ManifestUnknown) as exc:
        c.get_manifest("r", "nope")
    assert str(exc.value) == "manifest unknown: manifest unknown"


def test_401_even_after_login(fault_registry: FaultRegistry) -> None:
    fault_registry.users["u"] = "p"
    fault_registry.reject_all = True
    with _client(fault_registry, Credentials("u", "p")) as c, pytest.raises(Unauthorized) as exc:
        c.ping()
    assert str(exc.value) == "unauthorized: authentication required"


def test_basic_auth_is_answered(fault_registry: FaultRegistry) -> None:
    fault_registry.users["u"] = "p"
    data, dg = _blob(fault_registry, 1000)
    with _client(fault_registry, Credentials("u", "p")) as c:
        assert c.open_blob("r", dg, len(data)).read() == data
    with _client(fault_registry, Credentials("u", "wrong")) as c, pytest.raises(Unauthorized):
        c.head_blob("r", dg)


def _image(reg: FaultRegistry, fault: str | None, which: int = 1) -> tuple[str, list[str]]:
    blobs = [gz_layer({"a": os.urandom(200_000)}, 0), gz_layer({"b": os.urandom(300_000)}, 0)]
    reg.manifest_for("x/img", "1", config_json([d for _, d in blobs]), [b for b, _ in blobs])
    digests = [str(digest_bytes(b)) for b, _ in blobs]
    if fault:
        reg.faults[digests[which]] = fault
    if fault == "wrong":
        # a valid gzip'd tar of the same length but other content: only the digest check can tell
        other, _ = gz_layer({"b": os.urandom(300_000)}, 0)
        assert len(other) == len(blobs[which][0])
        reg.substitutes[digests[which]] = other
    return f"{reg.host}/x/img:1", digests


def _stored_blobs(root: Path) -> set[str]:
    return {p.name for p in root.rglob("*") if p.is_file() and len(p.name) == 64}


@pytest.mark.parametrize("fault", ["wrong", "truncate"])
def test_bad_blob_leaves_nothing_in_store(fault_registry: FaultRegistry, strata: StrataRun, fault: str) -> None:
    ref, digests = _image(fault_registry, fault)
    res = strata("pull", ref)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Error:" in res.stderr and digests[1] in res.stderr
    assert digests[1].split(":")[1] not in _stored_blobs(strata.root)
    images = strata("images", "-q", check=True)
    assert images.stdout.strip() == ""


def test_pull_resumes_after_drop(fault_registry: FaultRegistry, strata: StrataRun) -> None:
    ref, _digests = _image(fault_registry, "drop_once")
    res = strata("pull", ref)
    assert res.returncode == 0, res.stderr
    assert "Status: Downloaded newer image for" in res.stdout
    assert res.stdout.strip().splitlines()[-1] == ref


def test_pull_unknown_tag_message(fault_registry: FaultRegistry, strata: StrataRun) -> None:
    res = strata("pull", f"{fault_registry.host}/x/img:nope")
    assert res.returncode == 1
    assert res.stdout == ""  # Docker says "Pulling from" only once the manifest is found
    assert res.stderr.strip() == (
        f"Error: manifest for {fault_registry.host}/x/img:nope not found: manifest unknown: manifest unknown"
    )
    res = strata("pull", f"{fault_registry.host}/nosuchrepo")
    assert res.stdout.splitlines()[0] == "Using default tag: latest"
    assert f"manifest for {fault_registry.host}/nosuchrepo:latest not found" in res.stderr


def test_kill_9_mid_pull_leaves_nothing_then_pull_works(fault_registry: FaultRegistry, strata: StrataRun) -> None:
    import signal
    import subprocess

    from .conftest import STRATA

    ref, digests = _image(fault_registry, "slow")
    proc = subprocess.Popen([*STRATA, "pull", ref], env=strata.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if sum(1 for m, p, _ in fault_registry.requests if p.endswith(digests[1]) and m == "GET"):
            break
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert strata("images", "-q", check=True).stdout.strip() == ""
    del fault_registry.faults[digests[1]]
    res = strata("pull", ref)
    assert res.returncode == 0, res.stderr
    assert len(strata("images", "-q", check=True).stdout.split()) == 1


def test_index_picks_the_host_platform(fault_registry: FaultRegistry) -> None:
    import json

    from strata.image.spec import Platform
    from strata.transports.registry import registry_image

    from .conftest import config_json as cfg

    amd_layer, amd_diff = gz_layer({"amd": b"1"})
    arm_layer, arm_diff = gz_layer({"arm": b"2"})
    amd = fault_registry.manifest_for("multi", "amd", {**cfg([amd_diff]), "architecture": "amd64"}, [amd_layer])
    arm = fault_registry.manifest_for("multi", "arm", {**cfg([arm_diff]), "architecture": "arm64"}, [arm_layer])
    sizes = {d: len(fault_registry.manifests[f"multi:{d}"][0]) for d in (amd, arm)}
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": arm, "size": sizes[arm],
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": amd, "size": sizes[amd],
             "platform": {"architecture": "amd64", "os": "linux"}},
        ],
    }  # fmt: skip
    top = fault_registry.add_manifest("multi", "latest", json.dumps(index).encode(), index["mediaType"])  # type: ignore[arg-type]
    with _client(fault_registry) as c:
        img = registry_image(c, "multi", "latest", platform=Platform("linux", "arm64"))
        assert str(img.digest()) == arm and str(img.top_digest) == top
        assert [str(d) for d in img.config().diff_ids] == [arm_diff]
        img = registry_image(c, "multi", "latest", platform=Platform("linux", "amd64"))
        assert str(img.digest()) == amd
        with pytest.raises(Exception, match="no matching manifest for linux/s390x in the manifest list entries"):
            registry_image(c, "multi", "latest", platform=Platform("linux", "s390x"))


def test_push_of_a_missing_image(strata: StrataRun) -> None:
    res = strata("push", "127.0.0.1:1/nothing/here:1")
    assert res.returncode == 1
    assert res.stderr.strip() == "Error: An image does not exist locally with the tag: 127.0.0.1:1/nothing/here"


def test_progress_printer_lines_and_bars() -> None:
    import io

    from strata.cli.distribution import ProgressPrinter
    from strata.transports.base import ProgressEvent

    plain = io.StringIO()
    p = ProgressPrinter(plain, tty=False)
    for ev in [ProgressEvent("aaa", "Already exists"), ProgressEvent("bbb", "Pulling fs layer"),
               ProgressEvent("bbb", "Downloading", 5, 10), ProgressEvent("bbb", "Download complete"),
               ProgressEvent("aaa", "Pull complete"), ProgressEvent("bbb", "Pull complete")]:  # fmt: skip
        p(ev)
    assert plain.getvalue().splitlines() == [
        "aaa: Already exists", "bbb: Pulling fs layer", "bbb: Download complete", "bbb: Pull complete"
    ]
    tty = io.StringIO()
    t = ProgressPrinter(tty, tty=True)
    t(ProgressEvent("aaa", "Pulling fs layer"))
    t(ProgressEvent("bbb", "Pulling fs layer"))
    t(ProgressEvent("aaa", "Downloading", 500_000, 1_000_000))
    out = tty.getvalue()
    assert "\x1b[2A" in out and "aaa: Downloading [" in out and "500kB/1MB" in out


def test_ctrl_c_mid_pull_stops_promptly_and_leaves_nothing(fault_registry: FaultRegistry, strata: StrataRun) -> None:
    import signal
    import subprocess

    from .conftest import STRATA

    ref, digests = _image(fault_registry, "trickle")  # the 300 kB layer trickles in 16 kB every 1 s (~19 s)
    proc = subprocess.Popen([*STRATA, "pull", ref], env=strata.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(p.endswith(digests[1]) and m == "GET" for m, p, _ in fault_registry.requests):
            break
        time.sleep(0.05)
    time.sleep(0.3)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=15)
    # not after the slow download has finished (~18 s on), with room for a slow exit on a loaded machine
    assert time.monotonic() - sent < 10.0, err
    assert proc.returncode == 130
    assert strata("images", "-q", check=True).stdout.strip() == ""
    assert digests[1].split(":")[1] not in _stored_blobs(strata.root)


def test_pull_gzip_zstd_and_uncompressed_layers(fault_registry: FaultRegistry, strata: StrataRun) -> None:
    import gzip
    import json

    import zstandard

    from strata.image import mediatypes as mt

    from .conftest import layer_tar

    tars = [layer_tar({"a": b"gzip" * 1000}), layer_tar({"b": b"zstd" * 1000}), layer_tar({"c": b"plain" * 1000})]
    blobs = [gzip.compress(tars[0], mtime=0), zstandard.ZstdCompressor().compress(tars[1]), tars[2]]
    types = [mt.OCI_LAYER_GZIP, mt.OCI_LAYER_ZSTD, mt.OCI_LAYER]
    diff_ids = [str(digest_bytes(t)) for t in tars]
    cfg = json.dumps(config_json(diff_ids)).encode()
    manifest = {
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "size": len(cfg), "digest": fault_registry.add_blob(cfg)},
        "layers": [{"mediaType": t, "size": len(b), "digest": fault_registry.add_blob(b)} for t, b in zip(types, blobs, strict=True)],
    }  # fmt: skip
    fault_registry.add_manifest("kinds/img", "1", json.dumps(manifest).encode(), mt.OCI_MANIFEST)
    res = strata("pull", f"{fault_registry.host}/kinds/img:1")
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("Pull complete") == 3
    image_id = strata("images", "-q", "--no-trunc", check=True).stdout.strip()
    assert image_id == str(digest_bytes(cfg))


def test_refused_connection_in_gos_words(strata: StrataRun) -> None:
    with socket.socket() as s:  # a port nothing listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        pulled = strata("pull", f"127.0.0.1:{port}/x:1")
        searched = strata("search", f"127.0.0.1:{port}/x")  # probes twice: the second said 'Get "": no endpoint'
    for res in (pulled, searched):
        assert res.returncode == 1
        assert res.stderr == f'Error: Get "http://127.0.0.1:{port}/v2/": dial tcp 127.0.0.1:{port}: connect: connection refused\n'
