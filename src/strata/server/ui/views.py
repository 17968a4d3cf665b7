"""The UI's request handlers. Every page goes through the same access rules as the registry API:
a visitor sees a repository only with the pull right on it, and deletes only with the delete right
on a registry whose deletes are enabled; a repository one may not see is "not found", like one that
does not exist."""

from __future__ import annotations

import asyncio
import math
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web

from strata.digest import Digest
from strata.errors import InvalidDigest
from strata.server.gc import last_run
from strata.server.handlers.base import ServerState
from strata.server.handlers.manifests import remove_manifest, remove_tag
from strata.server.names import is_valid_name, is_valid_tag
from strata.server.ui import access, data, pages
from strata.server.ui.config import UIConfig
from strata.server.ui.render import Chrome
from strata.server.ui.session import SessionStore
from strata.server.ui.static import FILES

__all__ = ["SECURITY_HEADERS", "UI"]

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_NOT_FOUND = "repository or manifest not found (or you may not see it)"


@dataclass
class Visit:
    chrome: Chrome
    sid: str
    fresh: bool


class UI:
    def __init__(self, config: UIConfig, state: ServerState) -> None:
        self.config = config
        self.state = state
        self.base = "" if config.path == "/" else config.path
        self.sessions = SessionStore(config.sessionttl, config.path)

    # ------------------------------------------------------------------ plumbing

    def visit(self, request: web.Request) -> Visit:
        sid = self.sessions.session_id(request)
        session = self.sessions.get(sid)
        auth = self.state.auth
        if session is not None and access.password_fingerprint(auth, session.account) != session.fingerprint:
            self.sessions.drop(sid)
            session = None
        fresh = sid is None
        sid = sid or secrets.token_urlsafe(32)
        chrome = Chrome(self.base, session.account if session else None, self.sessions.csrf_token(sid),
                        access.can_sign_in(auth))
        return Visit(chrome, sid, fresh)

    def page(self, request: web.Request, visit: Visit, body: str, status: int = 200) -> web.Response:
        resp = web.Response(status=status, text=body, content_type="text/html", charset="utf-8",
                            headers=SECURITY_HEADERS)
        if visit.fresh:
            self.sessions.set_cookie(resp, request, visit.sid)
        return resp

    def error(self, request: web.Request, visit: Visit, status: int, message: str) -> web.Response:
        return self.page(request, visit, pages.error_page(visit.chrome, status, message), status)

    def actions(self, visit: Visit, name: str) -> frozenset[str]:
        return access.actions_for(self.state.auth, visit.chrome.account, name)

    def visible(self, visit: Visit, name: str) -> bool:
        return is_valid_name(name) and "pull" in self.actions(visit, name) and self.state.registry.exists(name)

    # ------------------------------------------------------------------ pages

    async def repos(self, request: web.Request) -> web.StreamResponse:
        visit = self.visit(request)
        query = request.query.get("q", "")[:256]
        names = await asyncio.to_thread(self.state.registry.repositories)
        term = query.strip().lower()
        shown = [n for n in names if term in n and "pull" in self.actions(visit, n)]
        size = self.config.pagesize
        pages_total = max(1, math.ceil(len(shown) / size))
        page = min(_int(request.query.get("page"), 1), pages_total)
        chunk = shown[(page - 1) * size : page * size]
        registry = self.state.registry
        rows = await asyncio.to_thread(lambda: [data.repo_summary(registry.repository(n)) for n in chunk])
        gc = ""
        if visit.chrome.account or not visit.chrome.sign_in:  # an anonymous visitor of a closed registry: no
            gc = pages.last_gc(await asyncio.to_thread(last_run, registry.driver))
        return self.page(request, visit, pages.repos_page(visit.chrome, rows, query, page, pages_total, len(shown),
                                                          gc))

    async def repo(self, request: web.Request) -> web.StreamResponse:
        visit = self.visit(request)
        name = request.query.get("name", "")
        if not self.visible(visit, name):
            return self.error(request, visit, 404, _NOT_FOUND)
        rows = await asyncio.to_thread(data.tag_rows, self.state.registry.repository(name))
        may_delete = self.state.config.delete_enabled and "delete" in self.actions(visit, name)
        return self.page(request, visit, pages.repo_page(visit.chrome, name, request.host, rows, may_delete))

    async def manifest(self, request: web.Request) -> web.StreamResponse:
        visit = self.visit(request)
        name, ref = request.query.get("name", ""), request.query.get("ref", "")
        d = self.resolve(name, ref) if self.visible(visit, name) else None
        repo = self.state.registry.repository(name)
        view = await asyncio.to_thread(data.manifest_view, repo, d) if d is not None else None
        if view is None:
            return self.error(request, visit, 404, _NOT_FOUND)
        may_delete = self.state.config.delete_enabled and "delete" in self.actions(visit, name)
        return self.page(request, visit, pages.manifest_page(visit.chrome, name, request.host, view, may_delete))

    def resolve(self, name: str, ref: str) -> Digest | None:
        if ":" in ref:
            try:
                return Digest.parse(ref)
            except InvalidDigest:
                return None
        return self.state.registry.repository(name).tags.get(ref) if is_valid_tag(ref) else None

    async def static(self, request: web.Request) -> web.StreamResponse:
        entry = FILES.get(request.match_info["file"])
        if entry is None:
            raise web.HTTPNotFound()
        return web.Response(body=entry[1], headers={**SECURITY_HEADERS, "Content-Type": entry[0],
                                                    "Cache-Control": "max-age=300"})

    # ------------------------------------------------------------------ forms

    async def login_form(self, request: web.Request) -> web.StreamResponse:
        visit = self.visit(request)
        if not visit.chrome.sign_in:
            return self.error(request, visit, 404, "this registry has no sign-in")
        return self.page(request, visit, pages.login_page(visit.chrome))

    async def login(self, request: web.Request) -> web.StreamResponse:
        visit = self.visit(request)
        form = await request.post()
        if not self.sessions.csrf_ok(request, None if visit.fresh else visit.sid, str(form.get("csrf", ""))):
            return self.error(request, visit, 403, "the form expired or came from another site; try again")
        user, password = str(form.get("username", ""))[:256], str(form.get("password", ""))[:1024]
        auth = self.state.auth
        if not visit.chrome.sign_in or not await access.verify_password(auth, user, password):
            return self.page(request, visit, pages.login_page(visit.chrome, "wrong user name or password", user), 401)
        self.sessions.drop(visit.sid)
        sid = self.sessions.create(user, access.password_fingerprint(auth, user))
        resp = _see_other(f"{self.base}/")
        self.sessions.set_cookie(resp, request, sid)
        return resp

    async def logout(self, request: web.Request) -> web.StreamResponse:
        visit = self.visit(request)
        form = await request.post()
        if not self.sessions.csrf_ok(request, None if visit.fresh else visit.sid, str(form.get("csrf", ""))):
            return self.error(request, visit, 403, "the form expired or came from another site; try again")
        self.sessions.drop(visit.sid)
        resp = _see_other(f"{self.base}/")
        self.sessions.set_cookie(resp, request, secrets.token_urlsafe(32))
        return resp

    async def delete(self, request: web.Request) -> web.StreamResponse:
        visit = self.visit(request)
        form = await request.post()
        if not self.sessions.csrf_ok(request, None if visit.fresh else visit.sid, str(form.get("csrf", ""))):
            return self.error(request, visit, 403, "the form expired or came from another site; try again")
        name, tag, digest = (str(form.get(k, "")) for k in ("name", "tag", "digest"))
        if not self.visible(visit, name):
            return self.error(request, visit, 404, _NOT_FOUND)
        if not self.state.config.delete_enabled:
            return self.error(request, visit, 405, "deletes are disabled on this registry")
        if "delete" not in self.actions(visit, name):
            return self.error(request, visit, 403, f"{visit.chrome.account or 'anonymous'} may not delete in {name}")
        if not await self.remove(request, visit, name, tag, digest):
            return self.error(request, visit, 404, _NOT_FOUND)
        return _see_other(f"{self.base}/repo?{urlencode({'name': name})}")

    async def remove(self, request: web.Request, visit: Visit, name: str, tag: str, digest: str) -> bool:
        repo = self.state.registry.repository(name)
        account = visit.chrome.account
        if tag:
            return is_valid_tag(tag) and remove_tag(self.state, repo, tag, request, account)
        d = self.resolve(name, digest) if ":" in digest else None
        return d is not None and remove_manifest(self.state, repo, d, request, account)


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={**SECURITY_HEADERS, "Location": location})


def _int(text: str | None, default: int) -> int:
    try:
        return max(1, int(text or default))
    except ValueError:
        return default
