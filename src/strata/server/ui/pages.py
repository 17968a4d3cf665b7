"""The UI's pages as HTML: repositories, one repository's tags, a manifest, sign-in, errors."""

from __future__ import annotations

import time
from typing import Any

from strata.image import mediatypes as mt
from strata.server.gc import LastRun
from strata.server.ui.data import ManifestView, RepoSummary, TagRow, storage_used
from strata.server.ui.render import Chrome, esc, layout, link, pretty_json, table, url
from strata.server.ui.text import ago, history_rows, human_size

__all__ = ["error_page", "last_gc", "login_page", "manifest_page", "repo_page", "repos_page"]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def last_gc(run: LastRun | None) -> str:
    """The last garbage collection, one line."""
    if run is None:
        return '<p class="notice" id="last-gc">Last garbage collection: never</p>'
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(run.started))
    verb = "would delete" if run.dry_run else "deleted"
    freed = "would free" if run.dry_run else "freed"
    text = (f"Last garbage collection: {ago(run.started)} ({when}), took {run.duration:.1f}s"
            + (" (dry run)" if run.dry_run else "")
            + f": {verb} {_plural(run.deleted_blobs, 'blob')}, {_plural(run.deleted_manifests, 'manifest')}, "
            f"{_plural(run.deleted_uploads, 'upload')}; {freed} {human_size(run.freed_bytes)}")
    return f'<p class="notice" id="last-gc">{esc(text)}</p>'


def repos_page(chrome: Chrome, rows: list[RepoSummary], query: str, page: int, pages: int, total: int,
               gc: str = "") -> str:
    """``gc``: the last garbage collection's line (``last_gc``), empty for a visitor who may not see it."""
    search = (f'<form class="search" method="get" action="{esc(chrome.base)}/">'
              f'<input type="search" name="q" value="{esc(query)}" placeholder="Search repositories" '
              f'aria-label="Search repositories"><button type="submit">Search</button></form>')
    cells = [[link(url(chrome, "repo", name=r.name), r.name), esc(r.tags), esc(human_size(r.size)),
              esc(ago(r.last_push))] for r in rows]
    empty = "No repositories" + ("" if chrome.account or not chrome.sign_in else " you may see: sign in to see more")
    pager = []
    if page > 1:
        pager.append(link(url(chrome, "", q=query, page=str(page - 1)), "Previous", "prev"))
    pager.append(f"<span>Page {page} of {pages} · {total} repositories</span>")
    if page < pages:
        pager.append(link(url(chrome, "", q=query, page=str(page + 1)), "Next", "next"))
    body = (f"<h1>Repositories</h1>{search}"
            + table(["Repository", "Tags", "Size", "Last push"], cells, empty)
            + f'<div class="pager">{"".join(pager)}</div>' + gc)
    return layout(chrome, "Repositories", body)


def _platforms(row: TagRow) -> str:
    return "<br>".join(esc(p) for p in row.platforms) or "—"


def repo_page(chrome: Chrome, name: str, host: str, rows: list[TagRow], may_delete: bool) -> str:
    cells = []
    for r in rows:
        pull = f"docker pull {host}/{name}:{r.tag}"
        cell = [link(url(chrome, "manifest", name=name, ref=r.tag), r.tag),
                f'<span class="mono digest" title="{esc(r.digest)}">{esc(r.digest.algorithm)}:{esc(r.digest.hex[:12])}</span>',
                esc(human_size(r.size)), esc(ago(r.created)), _platforms(r), esc(ago(r.pushed)),
                f'<code>{esc(pull)}</code><button class="copy" type="button" data-copy="{esc(pull)}">copy</button>']
        if may_delete:
            cell.append(chrome.form("/delete", {"name": name, "tag": r.tag}, "Delete tag", css="danger",
                                    confirm=f"Delete the tag {r.tag}?"))
        cells.append(cell)
    headers = ["Tag", "Digest", "Size", "Created", "OS/Arch", "Pushed", "Pull"] + (["" ] if may_delete else [])
    tags = [r.tag for r in rows]
    first = "latest" if "latest" in tags or not tags else tags[0]
    used = (f'<p class="notice" id="storage-used">Storage used: {esc(human_size(storage_used(rows)))} '
            f"in {_plural(len(rows), 'tag')} (config and layers, each blob counted once)</p>")
    body = (f'<h1>{esc(name)}</h1>{used}<p class="notice">Pull with <code>strata pull {esc(host)}/{esc(name)}:{esc(first)}</code>'
            f' or <code>docker pull {esc(host)}/{esc(name)}:{esc(first)}</code></p>'
            + table(headers, cells, "No tags"))
    return layout(chrome, name, body)


def _config_facts(cfg: dict[str, Any]) -> str:
    inner = cfg.get("config") if isinstance(cfg.get("config"), dict) else {}
    assert isinstance(inner, dict)
    rows = []
    for key in ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Labels"):
        value = inner.get(key)
        if isinstance(value, list):
            text = "<br>".join(f"<code>{esc(v)}</code>" for v in value)
        elif isinstance(value, dict):
            text = "<br>".join(f"<code>{esc(k)}{'=' + esc(v) if v not in ({}, None) else ''}</code>"
                               for k, v in value.items())
        else:
            text = f"<code>{esc(value)}</code>" if value else "—"
        rows.append(f"<dt>{esc(key)}</dt><dd>{text or '—'}</dd>")
    plat = "/".join(str(cfg.get(k)) for k in ("os", "architecture", "variant") if cfg.get(k))
    rows.insert(0, f"<dt>Platform</dt><dd>{esc(plat or '—')}</dd><dt>Created</dt><dd>{esc(cfg.get('created') or '—')}</dd>")
    return '<dl class="facts">' + "".join(rows) + "</dl>"


def _manifest_sections(chrome: Chrome, name: str, v: ManifestView) -> str:
    out = []
    if v.children:
        out.append("<h2>Platforms</h2>" + table(["Platform", "Manifest", "Media type", "Size"], [
            [esc(p or "—"), link(url(chrome, "manifest", name=name, ref=c.digest), c.digest, "mono digest"),
             esc(c.media_type), esc(human_size(c.size))] for p, c in v.children]))
    if v.media_type in mt.MANIFEST_TYPES or v.layers:
        out.append("<h2>Layers</h2>" + table(["Digest", "Media type", "Size"], [
            [f'<span class="mono digest">{esc(x.digest)}</span>', esc(x.media_type), esc(human_size(x.size))]
            for x in v.layers], "No layers"))
    if v.config:
        out.append("<h2>Configuration</h2>" + _config_facts(v.config))
        hist = history_rows(v.config, v.config_digest, [x.size for x in v.layers])
        out.append("<h2>History</h2>" + table(["Image", "Created", "Created by", "Size", "Comment"],
                                               [[f'<span class="mono">{esc(c)}</span>' if i == 2 else esc(c)
                                                 for i, c in enumerate(row)] for row in hist], "No history"))
    out.append("<h2>Referrers</h2>" + table(["Artifact type", "Manifest", "Size"], [
        [esc(art or "—"), link(url(chrome, "manifest", name=name, ref=r.digest), r.digest, "mono digest"),
         esc(human_size(r.size))] for art, r in v.referrers], "No referrers"))
    out.append(f'<h2>Raw manifest</h2><pre id="raw">{pretty_json(v.raw)}</pre>')
    return "".join(out)


def manifest_page(chrome: Chrome, name: str, host: str, v: ManifestView, may_delete: bool) -> str:
    tags = ", ".join(link(url(chrome, "manifest", name=name, ref=t), t) for t in v.tags) or "—"
    facts = (f'<dl class="facts"><dt>Repository</dt><dd>{link(url(chrome, "repo", name=name), name)}</dd>'
             f'<dt>Digest</dt><dd class="mono digest">{esc(v.digest)}</dd>'
             f"<dt>Media type</dt><dd>{esc(v.media_type)}</dd>"
             + (f"<dt>Artifact type</dt><dd>{esc(v.artifact_type)}</dd>" if v.artifact_type else "")
             + f"<dt>Size</dt><dd>{esc(human_size(v.size))} (config + layers)</dd><dt>Tags</dt><dd>{tags}</dd>"
             f"<dt>Pull</dt><dd><code>docker pull {esc(host)}/{esc(name)}@{esc(v.digest)}</code></dd></dl>")
    delete = ""
    if may_delete:
        delete = "<p>" + chrome.form("/delete", {"name": name, "digest": str(v.digest)}, "Delete manifest",
                                     css="danger", confirm="Delete this manifest and every tag on it?") + "</p>"
    body = f"<h1>{esc(name)}@{esc(v.digest)}</h1>{facts}{delete}{_manifest_sections(chrome, name, v)}"
    return layout(chrome, f"{name}@{v.digest.hex[:12]}", body)


def login_page(chrome: Chrome, message: str = "", user: str = "") -> str:
    note = f'<p class="notice error">{esc(message)}</p>' if message else ""
    body = (f"<h1>Sign in</h1>{note}"
            f'<form class="login" method="post" action="{esc(chrome.base)}/login">'
            f'<input type="hidden" name="csrf" value="{esc(chrome.csrf)}">'
            f'<label>User <input type="text" name="username" value="{esc(user)}" autocomplete="username" required></label>'
            f'<label>Password <input type="password" name="password" autocomplete="current-password" required></label>'
            f'<button type="submit">Sign in</button></form>')
    return layout(chrome, "Sign in", body)


def error_page(chrome: Chrome, status: int, message: str) -> str:
    body = f'<h1>{esc(status)}</h1><p class="notice error">{esc(message)}</p><p>{link(chrome.base + "/", "Repositories")}</p>'
    return layout(chrome, str(status), body)
