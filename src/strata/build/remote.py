"""ADD of http(s) URLs, as Docker's classic builder fetches them: the file is named after the URL's
last path element (or the response's Content-Disposition), mode 0600, its mtime from Last-Modified;
it is never extracted. Bodies are streamed to disk."""

from __future__ import annotations

import os
import posixpath
import re

from strata.errors import StrataError

TYPE_CHECKING = False  # pathlib's import costs a cached rebuild's start-up
if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["download", "is_url"]


def is_url(src: str) -> bool:
    return src.startswith(("http://", "https://"))


def _filename(url: str, disposition: str | None) -> str:
    import urllib.parse

    path = urllib.parse.urlparse(url).path
    name = posixpath.basename(path) if not path.endswith("/") else ""
    if not name and disposition:
        m = re.search(r'filename="?([^";]+)"?', disposition)
        name = posixpath.basename(m.group(1)) if m else ""
    if not name or name in (".", ".."):
        raise StrataError(f"cannot determine filename from url: {url}")
    return name


def download(url: str, dest_dir: Path) -> str:
    """Fetch ``url`` into ``dest_dir``; the file's name."""
    import email.utils  # the http machinery only for builds that fetch
    import shutil
    import urllib.error
    import urllib.request

    try:
        resp = urllib.request.urlopen(url, timeout=60)
    except urllib.error.HTTPError as e:
        raise StrataError(f"failed to GET {url} with status {e.code}: {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise StrataError(f"Get \"{url}\": {e}") from None
    with resp:
        name = _filename(url, resp.headers.get("Content-Disposition"))
        target = dest_dir / name
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as f:
            shutil.copyfileobj(resp, f, 1 << 20)
        os.chmod(target, 0o600)
        modified = resp.headers.get("Last-Modified")
        if modified:
            try:
                when = email.utils.parsedate_to_datetime(modified).timestamp()
                os.utime(target, (when, when))
            except (TypeError, ValueError):
                pass
    return name
