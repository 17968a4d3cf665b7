"""``archive.tarheader.header`` writes exactly the bytes tarfile's ``tobuf(PAX_FORMAT)`` writes (the layer
tars, hence every layer's diff ID, must not change): member by member over odd names, sizes, owners,
links and PAX records chosen at random (fixed seeds), and whole trees written by the tar writer with
each encoder, compared byte for byte."""

from __future__ import annotations

import io
import os
import random
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from strata.archive import tarwriter, write_tar_from_dir
from strata.archive.tarheader import header

_PIECES = ["a", "b", "/", ".", "é", "\udcff", "x" * 50, "日本", " ", "=", "\n", "ü" * 3, "..", "\x7f"]
_TYPES = [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE,
          tarfile.FIFOTYPE, tarfile.XHDTYPE]  # fmt: skip


def _tobuf(info: tarfile.TarInfo) -> bytes:
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _text(rnd: random.Random) -> str:
    return "".join(rnd.choice(_PIECES) for _ in range(rnd.choice([0, 1, 3, 8, 20, 40])))


def _number(rnd: random.Random) -> int:
    return rnd.choice([0, 1, 7, 8**7 - 1, 8**7, 8**11 - 1, 8**11, 2**40, -1, rnd.randrange(1 << 33)])


def _random_infos(seed: int, count: int) -> Iterator[tarfile.TarInfo]:
    rnd = random.Random(seed)
    for _ in range(count):
        info = tarfile.TarInfo(_text(rnd))
        info.type = rnd.choice(_TYPES)
        info.linkname = _text(rnd) if rnd.random() < 0.5 else ""
        info.uname = _text(rnd) if rnd.random() < 0.2 else ""
        info.gname = _text(rnd) if rnd.random() < 0.2 else ""
        info.mode = rnd.choice([0o644, 0o777, 0o4755, 0o100644, -1, 0, 0o7777])
        info.uid, info.gid, info.size, info.mtime = (_number(rnd) for _ in range(4))
        if rnd.random() < 0.1:
            info.mtime = rnd.random() * 1e9  # a float: tarfile writes a PAX mtime record
        info.devmajor, info.devminor = rnd.choice([0, 1, 8, 8**7]), rnd.choice([0, 3, 255])
        if rnd.random() < 0.3:
            keys = ["SCHILY.xattr." + _text(rnd), "path", "uid", "mtime", "size", "linkpath"]
            info.pax_headers = {rnd.choice(keys): _text(rnd) for _ in range(rnd.randint(1, 3))}
        yield info


def _outcome(encode: object, info: tarfile.TarInfo) -> bytes | type[BaseException]:
    try:
        return encode(info)  # type: ignore[operator,no-any-return]
    except Exception as e:  # the same error type as tarfile's, where tarfile refuses a member
        return type(e)


@pytest.mark.parametrize("seed", range(4))
def test_random_members_encode_as_tarfile_does(seed: int) -> None:
    checked = plain = 0
    for info in _random_infos(seed, 5000):
        want = _outcome(_tobuf, info)
        assert _outcome(header, info) == want, (info.get_info(), info.pax_headers)
        checked += 1
        plain += isinstance(want, bytes) and len(want) == 512
    assert checked == 5000 and plain > 20  # the plain ustar case is among them, not only PAX ones


def test_the_usual_members() -> None:
    for kind in _TYPES:
        for name in ("f", "d/", "a/" * 49 + "b", "a" * 100, "a" * 101, "é", "x\udcffy"):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid, info.mtime = kind, 0o755, 1000, 100, 1_700_000_000
            info.linkname = "../t" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
            info.devmajor, info.devminor = 8, 1
            info.uname = info.gname = ""
            assert header(info) == _tobuf(info), (kind, name)


def _tree(root: Path) -> None:
    (root / "d" / "deep" / ("n" * 120)).mkdir(parents=True)
    (root / "d" / "deep" / ("n" * 120) / "file").write_bytes(b"x" * 513)
    for size in (0, 1, 511, 512, 513, 4096, 70000):
        (root / f"s{size}").write_bytes(os.urandom(size))
    (root / "é-名前").write_text("utf-8 name\n")
    os.symlink("t" * 150, root / "longlink")
    os.symlink("../../etc/passwd", root / "d" / "up")
    os.link(root / "s1", root / ("hard" + "h" * 110))
    (root / "owned").write_text("o\n")
    os.chown(root / "owned", 70000, 2**21 + 5)  # a gid beyond the ustar field: a PAX record
    os.utime(root / "owned", (0, 2**34))  # beyond the 11 octal digits of the mtime field
    os.mkfifo(root / "fifo")
    os.mknod(root / "null", 0o666 | 0o020000, os.makedev(1, 3))
    os.mknod(root / "wh", 0o020000, 0)  # an overlay whiteout
    os.setxattr(root / "s0", "user.comment", b"hello=world \xff")
    os.setxattr(root / "d", "user.overlay.opaque", b"y")
    os.chmod(root / "s512", 0o4755)
    os.mkdir(root / b"\xff\xfe-not-utf8".decode(errors="surrogateescape"))


def test_trees_write_the_same_bytes_with_either_encoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (owners, device nodes)")
    root = tmp_path / "tree"
    root.mkdir()
    _tree(root)
    outputs = []
    for encode in (header, _tobuf):
        monkeypatch.setattr(tarwriter, "header", encode)
        for upper in (False, True):
            out = io.BytesIO()
            info = write_tar_from_dir(root, out, from_overlay_upper=upper)
            outputs.append((upper, out.getvalue(), info.diff_id))
    assert outputs[0] == outputs[2] and outputs[1] == outputs[3]
    with tarfile.open(fileobj=io.BytesIO(outputs[1][1])) as tar:
        names = tar.getnames()
    assert "d/.wh..wh..opq" in names and ".wh.wh" in names and any("n" * 120 in n for n in names)
