"""The token server's signing key: created once, atomically, even when several servers start at once."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from strata.server.auth.token import load_or_create_key


def test_concurrent_creation_yields_one_key(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    keys = []
    lock = threading.Lock()

    def start() -> None:
        key = load_or_create_key(str(path))
        with lock:
            keys.append(key.private_numbers().private_value)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    assert os.listdir(tmp_path) == ["key.pem"]  # no temp files left behind
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(str(path)).private_numbers().private_value == keys[0]
