"""``strata registry``: serve a registry, collect its garbage, manage its htpasswd file."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from typing import Any

from strata.errors import StrataError, UsageError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("registry", help="Run and manage a private image registry")
    sub = p.add_subparsers(dest="registry_command", metavar="COMMAND", parser_class=type(p))
    p.set_defaults(func=_usage(p))

    serve = sub.add_parser(
        "serve", help="Serve the registry API", epilog=_SERVE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    serve.add_argument("--config", help="configuration file (distribution's config.yml shape)")
    serve.add_argument("--addr", help="listen address HOST:PORT (default 127.0.0.1:5000)")
    serve.add_argument("--root", dest="registry_root", help="storage root directory")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(func=_serve)

    gc = sub.add_parser("garbage-collect", help="Delete blobs no manifest references")
    gc.add_argument("--config")
    gc.add_argument("--root", dest="registry_root")
    gc.add_argument("--dry-run", "-d", action="store_true", help="only print what would be deleted")
    gc.add_argument("--delete-untagged", "-m", action="store_true", help="also delete untagged manifests")
    gc.add_argument("--grace-period", help="keep blobs younger than this (e.g. 1h, 0s)")
    gc.set_defaults(func=_gc)

    htp = sub.add_parser("htpasswd", help="Add a user to an htpasswd file (bcrypt)")
    htp.add_argument("-c", dest="create", action="store_true", help="create (truncate) the file")
    htp.add_argument("file")
    htp.add_argument("user")
    htp.add_argument("password", nargs="?")
    htp.add_argument("--password-stdin", action="store_true")
    htp.set_defaults(func=_htpasswd)


_SERVE_EPILOG = """\
configuration (YAML, distribution's config.yml shape; STRATA_REGISTRY_<SECTION>_<KEY> overrides;
unknown keys are reported on stderr; auth that would fail open refuses to start):
  storage.filesystem.rootdirectory   storage.inmemory
  storage.delete.enabled (false)     deletes answer 405 UNSUPPORTED unless true
  storage.maintenance.uploadpurging.enabled/age/interval/dryrun (true, 168h, 24h, false)
  storage.s3.bucket/region/regionendpoint/accesskey/secretkey/secure/chunksize/rootdirectory/
    forcepathstyle/multipartcopythresholdsize/...   storage.redirect.disable   http.workers (1|N|auto)
  http.addr   http.tls.certificate   http.tls.key   http.readtimeout (120s)
  http.host                          external URL (https://registry.example.com): the token realm
  http.trustedproxies                proxies whose X-Forwarded-Proto/-Host are believed
  http.headertimeout (30s)           request headers must arrive within this
  http.idletimeout (60s)             idle keep-alive connections are closed after this
  http.maxconnsperclient (256)       open connections per client address (0 = no cap)
  http.debug.addr                    debug server: /debug/health, and metrics when
  http.debug.prometheus.enabled/path (false, /metrics)
  http.ratelimit.rate    requests per second per client address (0 = off)
  http.ratelimit.burst   requests a client may make at once (default: rate);
                         over the limit: 429 TOOMANYREQUESTS with Retry-After
  auth.htpasswd.realm/path           (both required; add users with `strata registry htpasswd`)
  auth.token.service/issuer/htpasswd/accessfile/signingkey/anonymouspull/expiration
  auth.token.refreshexpiration (90d) built-in token server at /auth/token: GET (Basic,
                                     offline_token=true) and the OAuth2 POST form
                                     (grant_type=password|refresh_token); its realm is
                                     auth.token.realm, else http.host, else https (with TLS) or
                                     http + the request's Host
  auth.token.realm/rootcertbundle    an external token server (its tokens' grants decide)
  notifications.endpoints[]          name, url, headers, timeout, threshold, backoff
  gc.interval/graceperiod/deleteuntagged/uploadpurgeage   online garbage collection
  validation.manifests.maxsize (4 MiB)   search.enabled   log.accesslog.disabled
"""


def _usage(p: argparse.ArgumentParser) -> Any:
    def handler(args: argparse.Namespace, ctx: Any) -> int:
        p.print_help(ctx.err)
        return 0

    return handler


def _config(args: argparse.Namespace, ctx: Any, **extra: Any) -> Any:
    """The merged configuration; keys strata does not know are reported on stderr, not ignored."""
    from strata.server.config import load_config

    cfg = load_config(getattr(args, "config", None), root=args.registry_root, **extra)
    for warning in cfg.warnings:
        print(f"WARNING: {warning}", file=ctx.err)
    return cfg


def _serve(args: argparse.Namespace, ctx: Any) -> int:
    from strata.server.workers import serve_workers

    cfg = _config(args, ctx, addr=args.addr)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=ctx.err,
    )
    if not cfg.root and not cfg.inmemory and "s3" not in (cfg.raw.get("storage") or {}):
        raise UsageError("no storage configured: pass --root DIR or set storage.filesystem.rootdirectory")
    try:
        return serve_workers(cfg)
    except OSError as e:
        raise StrataError(f"cannot listen on {cfg.addr}: {e.strerror or e}")
    except KeyboardInterrupt:
        return 0


def _gc(args: argparse.Namespace, ctx: Any) -> int:
    from strata.server.app import make_driver
    from strata.server.config import parse_duration
    from strata.server.gc import GCLock, collect
    from strata.server.storage.registry import Registry

    cfg = _config(args, ctx)
    if not cfg.root and "s3" not in (cfg.raw.get("storage") or {}):
        raise UsageError("garbage-collect needs --root DIR or a config with storage.filesystem.rootdirectory")
    grace = parse_duration(args.grace_period) if args.grace_period else cfg.gc.graceperiod
    driver = make_driver(cfg)
    report = collect(
        Registry(driver), GCLock(driver), dry_run=args.dry_run,
        delete_untagged=args.delete_untagged or cfg.gc.deleteuntagged, grace_period=grace,
        upload_purge_age=cfg.gc.uploadpurgeage,
    )
    verb = "would delete" if args.dry_run else "deleted"
    for repo, d in report.deleted_manifests:
        print(f"{repo}: {verb} manifest {d}", file=ctx.out)
    for d in report.deleted_blobs:
        print(f"{verb} blob {d}", file=ctx.out)
    for repo, uid in report.deleted_uploads:
        print(f"{repo}: {verb} upload {uid}", file=ctx.out)
    print(
        f"{len(report.marked)} blobs marked, {len(report.deleted_blobs)} blobs and "
        f"{len(report.deleted_manifests)} manifests {'eligible for deletion' if args.dry_run else 'deleted'}, "
        f"{report.freed_bytes} bytes {'reclaimable' if args.dry_run else 'freed'}",
        file=ctx.out,
    )
    return 0


def _htpasswd(args: argparse.Namespace, ctx: Any) -> int:
    from strata.server.auth.htpasswd import add_user

    if args.password_stdin:
        if args.password is not None:
            raise UsageError("--password and --password-stdin are mutually exclusive")
        password = (ctx.stdin or sys.stdin).readline().rstrip("\r\n")
    elif args.password is not None:
        password = args.password
    else:
        password = getpass.getpass(f"Password for {args.user}: ")
    if not password:
        raise UsageError("password must not be empty")
    add_user(args.file, args.user, password, create=args.create)
    print(f"{'Adding' if args.create else 'Updating'} password for user {args.user}", file=ctx.err)
    return 0
