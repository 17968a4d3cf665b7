"""Server-rendered HTML: one layout (``string.Template``) and small builders; every value is escaped."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from string import Template
from urllib.parse import urlencode

from strata.errors import InvalidArchive
from strata.image.spec import load_json

__all__ = ["Chrome", "esc", "layout", "link", "pretty_json", "table", "url"]

_LAYOUT = Template("""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>$title · strata registry</title>
<link rel="stylesheet" href="$base/static/ui.css">
<script src="$base/static/ui.js" defer></script>
</head><body>
<header><a class="brand" href="$base/">strata registry</a><nav>$nav</nav></header>
<main>
$body
</main></body></html>
""")


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


@dataclass(frozen=True)
class Chrome:
    """What every page needs: the UI's base path, the visitor, the form token, whether sign-in exists."""

    base: str
    account: str | None
    csrf: str
    sign_in: bool

    def form(self, action: str, fields: dict[str, str], label: str, *, css: str = "", confirm: str = "") -> str:
        hidden = "".join(f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">'
                         for k, v in {**fields, "csrf": self.csrf}.items())
        conf = f' data-confirm="{esc(confirm)}"' if confirm else ""
        cls = f' class="{esc(css)}"' if css else ""
        return (f'<form class="inline" method="post" action="{esc(self.base + action)}"{conf}>{hidden}'
                f"<button{cls} type=\"submit\">{esc(label)}</button></form>")


def url(chrome: Chrome, where: str, **query: str) -> str:
    q = urlencode({k: v for k, v in query.items() if v})
    return f"{chrome.base}/{where}" + (f"?{q}" if q else "")


def link(href: str, text: str, css: str = "") -> str:
    cls = f' class="{esc(css)}"' if css else ""
    return f'<a{cls} href="{esc(href)}">{esc(text)}</a>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], empty: str = "nothing here") -> str:
    """A table of already-escaped cells (callers escape; ``esc`` for text)."""
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    if not body:
        body = f'<tr><td colspan="{len(headers)}">{esc(empty)}</td></tr>'
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    return f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _nav(chrome: Chrome) -> str:
    if chrome.account is not None:
        return f"<span>signed in as <b>{esc(chrome.account)}</b></span>" + chrome.form(
            "/logout", {}, "Sign out", css="link")
    if chrome.sign_in:
        return link(f"{chrome.base}/login", "Sign in")
    return ""


def layout(chrome: Chrome, title: str, body: str) -> str:
    return _LAYOUT.substitute(title=esc(title), base=esc(chrome.base), nav=_nav(chrome), body=body)


def pretty_json(raw: bytes) -> str:
    """The raw document as sent (its digest is over these bytes), escaped; pretty only when it is compact."""
    text = raw.decode("utf-8", "replace")
    if "\n" not in text and len(text) < 1 << 20:
        try:
            text = json.dumps(load_json(raw, "manifest"), indent=2, ensure_ascii=False)
        except InvalidArchive:
            pass
    return esc(text)
