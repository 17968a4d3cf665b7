"""Go types side by side with Docker 20.10: ``inspect`` templates printing Go structs and ``time.Time``
values as Docker's typed structs do, and ``import URL`` errors in the daemon's words."""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from corehelpers import Strata  # type: ignore[import-not-found]

pytestmark = pytest.mark.peers


@pytest.fixture
def web(tmp_path: Path) -> Iterator[str]:
    """A loopback HTTP server of ``tmp_path``: its base URL."""
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _err(text: str) -> str:
    return re.sub(r"^(Error response from daemon: |Error: )", "", text.strip())


def test_import_url_404(strata: Strata, dockerd: Any, web: str) -> None:
    url = f"{web}/missing.tar"
    d = dockerd.run("import", url, "gotypes-parity:404", check=False)
    s = strata("import", url, "gotypes-parity:404", check=False)
    assert _err(d.stderr).startswith(f"failed to GET {url} with status 404 "), d.stderr  # the server's reason phrase
    assert (s.returncode, _err(s.stderr)) == (d.returncode, _err(d.stderr))


def test_import_url_refused(strata: Strata, dockerd: Any) -> None:
    import peers

    url = f"http://127.0.0.1:{peers.free_port()}/x.tar"
    d = dockerd.run("import", url, "gotypes-parity:refused", check=False)
    s = strata("import", url, "gotypes-parity:refused", check=False)
    assert (s.returncode, _err(s.stderr)) == (d.returncode, _err(d.stderr))
