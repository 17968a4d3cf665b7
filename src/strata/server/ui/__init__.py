"""The registry's web UI: ``install(app, state)`` mounts it when the config's ``ui.enabled`` is on.

Server-rendered pages (no build step, one small script), signed in through the registry's own users,
with the API's access rules: see ``views`` for the rules, ``session`` for cookies and CSRF.
"""

from __future__ import annotations

from aiohttp import web

from strata.server.handlers.base import ServerState
from strata.server.ui.config import UIConfig, parse_ui_config
from strata.server.ui.views import UI

__all__ = ["UIConfig", "install", "parse_ui_config"]


def install(app: web.Application, state: ServerState) -> UI | None:
    """Add the UI's routes to ``app`` if ``ui.enabled``; raises ``ConfigError`` for a bad ``ui`` section."""
    config = parse_ui_config(state.config.raw)
    if not config.enabled:
        return None
    ui = UI(config, state)
    base = ui.base
    if base:
        app.router.add_get(base, lambda request: _redirect(base + "/"))
    app.router.add_get(f"{base}/", ui.repos)
    app.router.add_get(f"{base}/repo", ui.repo)
    app.router.add_get(f"{base}/manifest", ui.manifest)
    app.router.add_get(f"{base}/static/{{file}}", ui.static)
    app.router.add_get(f"{base}/login", ui.login_form)
    app.router.add_post(f"{base}/login", ui.login)
    app.router.add_post(f"{base}/logout", ui.logout)
    app.router.add_post(f"{base}/delete", ui.delete)
    return ui


async def _redirect(location: str) -> web.StreamResponse:
    raise web.HTTPMovedPermanently(location)
