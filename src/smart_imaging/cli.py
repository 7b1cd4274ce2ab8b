"""The ``smart-imaging`` command: serve | check-config (| demo | samples)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import secrets
import sys
from importlib.metadata import entry_points
from pathlib import Path

from .errors import ConfigError
from .settings import Settings, settings_env, worker_share

COMMANDS_GROUP = "smart_imaging.commands"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smart-imaging", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    _add_serve_command(commands)
    check = commands.add_parser("check-config", help="validate tenant configs and list each problem")
    check.add_argument("config_dir", type=Path)

    _add_optional_commands(commands)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "check-config":
        return check_config(args.config_dir)
    handler = getattr(args, "handler", None)
    return int(handler(args)) if handler else 2


def _add_serve_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="serve every tenant config in a folder")
    serve.add_argument(
        "--config-dir", type=Path, help="folder of tenant *.json files (env SMART_IMAGING_CONFIG_DIR)"
    )
    serve.add_argument("--host", help="interface to listen on (env SMART_IMAGING_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (env SMART_IMAGING_PORT, default 8000)")
    serve.add_argument(
        "--base-url",
        help="public URL of this server, used in Endpoint addresses "
        "(env SMART_IMAGING_BASE_URL; default: from each request)",
    )
    serve.add_argument(
        "--dynamic-tenants",
        action="store_true",
        default=None,
        help="enable /dyn/{base64url(config)}/ tenants (env SMART_IMAGING_DYNAMIC_TENANTS)",
    )
    serve.add_argument(
        "--dynamic-upstream-allow",
        action="append",
        metavar="HOST[:PORT]",
        help="upstream host a dynamic config may name; repeatable "
        "(env SMART_IMAGING_DYNAMIC_UPSTREAM_ALLOW, comma-separated)",
    )
    _add_capacity_options(serve)
    _add_state_option(serve)
    serve.add_argument("--log-level", default="info")


def _add_capacity_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--workers",
        type=int,
        help="server processes sharing the port (env SMART_IMAGING_WORKERS; default: one per core)",
    )
    serve.add_argument(
        "--upstream-connections",
        type=int,
        help="connections to one archive host, shared by the workers; replicas x this must stay "
        "within what the archive serves at once (env SMART_IMAGING_UPSTREAM_CONNECTIONS, default 24)",
    )
    serve.add_argument(
        "--shutdown-timeout",
        type=float,
        help="seconds in-flight requests get to finish after SIGTERM "
        "(env SMART_IMAGING_SHUTDOWN_TIMEOUT, default 30)",
    )


def _add_state_option(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--ohif-url",
        help="an OHIF v3 deployment the viewer opens studies in "
        "(env SMART_IMAGING_OHIF_URL; docs/notes/ohif.md)",
    )
    serve.add_argument(
        "--redis-url",
        help="Redis for state shared by replicas and workers, redis://host:port/db "
        "(env SMART_IMAGING_REDIS_URL, better for a URL with a password; default: none, per process)",
    )


def _add_optional_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the subcommands installed packages register in the ``smart_imaging.commands`` entry-point
    group (each a callable taking these subparsers), e.g. the demo's ``demo`` and ``samples``."""
    for entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        try:
            add_commands = entry.load()
        except ImportError as exc:  # a plugin that cannot be imported adds no commands
            print(f"smart-imaging: commands of {entry.value} unavailable: {exc}", file=sys.stderr)
            continue
        add_commands(commands)


def _serve(args: argparse.Namespace) -> int:
    from .app import create_app, web_routes
    from .drain import process_drain
    from .logging_setup import configure
    from .server import serve_one, serve_workers

    configure(args.log_level)
    try:
        settings = _serve_settings(args)
    except ConfigError as exc:
        _print_problems(exc)
        return 2
    if settings.config_dir is None:
        print("smart-imaging serve: give --config-dir (or SMART_IMAGING_CONFIG_DIR)", file=sys.stderr)
        return 2
    workers = settings.workers or os.cpu_count() or 1
    if workers < 1 or settings.shutdown_timeout < 0 or settings.upstream_connections < 1:
        message = "--workers and --upstream-connections must be >= 1, --shutdown-timeout >= 0"
        print(f"smart-imaging serve: {message}", file=sys.stderr)
        return 2
    if workers > 1 and not settings.key:
        settings = _shared_random_key(settings, workers)
    try:  # the parent checks every config before any worker starts
        app = create_app(settings, extra_routes=web_routes(), drain=process_drain())
    except ConfigError as exc:
        _print_problems(exc)
        return 2
    if workers == 1:
        return serve_one(app, settings, args.log_level, process_drain())
    _warn_c_move(settings, workers)
    share = worker_share(settings.upstream_connections, workers)
    settings = dataclasses.replace(settings, upstream_connections=share)  # the command's total, shared
    os.environ.update(settings_env(settings))  # what the workers build their app from
    return serve_workers(settings, workers, args.log_level)


def _serve_settings(args: argparse.Namespace) -> Settings:
    allow = tuple(args.dynamic_upstream_allow) if args.dynamic_upstream_allow else None
    return Settings.from_env(
        config_dir=args.config_dir,
        host=args.host,
        port=args.port,
        base_url=args.base_url,
        dynamic_tenants=args.dynamic_tenants,
        dynamic_upstream_allow=allow,
        workers=args.workers,
        shutdown_timeout=args.shutdown_timeout,
        upstream_connections=args.upstream_connections,
        redis_url=args.redis_url,
        ohif_url=args.ohif_url,
    )


def _warn_c_move(settings: Settings, workers: int) -> None:
    """A C-MOVE tenant's storage SCP listens on one port: only one process can take it, and the
    archive's association must reach the process that asked (docs/deploy.md, DIMSE)."""
    from .config.tenant import DimseImages
    from .tenants.registry import load_dir

    assert settings.config_dir is not None
    for name, config in load_dir(settings.config_dir).items():
        if isinstance(config.images, DimseImages) and config.images.retrieval == "c-move":
            logging.getLogger("smart_imaging").warning(
                "tenant %s retrieves by C-MOVE: with %d workers only one can listen on its storePort "
                "and the others answer 502; serve it with --workers 1 per AE title and port, or use c-get",
                name,
                workers,
            )


def _shared_random_key(settings: Settings, workers: int) -> Settings:
    """One random binding key for all workers, so a binding minted by one opens in another."""
    logging.getLogger("smart_imaging").warning(
        "SMART_IMAGING_KEY is not set: binding tokens use a random key (shared by the %d workers) and "
        "stop working when this server restarts; set it for restarts and replicas",
        workers,
    )
    return dataclasses.replace(settings, key=secrets.token_urlsafe(32))


def check_config(config_dir: Path) -> int:
    """Validate each file on its own so every problem is listed; exit 0 only when all load."""
    from .config.loader import unknown_keys
    from .tenants.registry import RESERVED, TENANT_NAME, load_file

    if not config_dir.is_dir():
        print(f"{config_dir}: not a folder", file=sys.stderr)
        return 2
    files = sorted(config_dir.glob("*.json"))
    failed = 0
    for path in files:
        try:
            config = load_file(path)
        except ConfigError as exc:
            failed += 1
            for where, what in exc.problems:
                print(f"{path.name}: {where}: {what}")
            continue
        if not TENANT_NAME.match(path.stem) or path.stem in RESERVED:
            failed += 1
            print(f"{path.name}: tenant name {path.stem!r} is not allowed")
            continue
        for warning in _warnings(config, unknown_keys(json.loads(path.read_text()))):
            print(f"{path.name}: warning: {warning}")
        print(f"{path.name}: ok ({config.authorization.type}, {config.images.type}, {config.images.lookup})")
    print(f"{len(files) - failed} of {len(files)} configs valid")
    return 1 if failed else 0


def _warnings(config: object, unknown: list[str]) -> list[str]:
    from .config.tenant import SmartAuthorization, TenantConfig

    assert isinstance(config, TenantConfig)
    out = [f"{key}: unknown key, ignored" for key in unknown]
    auth = config.authorization
    if (
        isinstance(auth, SmartAuthorization)
        and auth.type == "smart-on-fhir-with-meditech-bugfixes"
        and not auth.allowInsecurePatientFromRequest
    ):
        out.append(
            "authorization: the meditech variant serves no request until "
            "allowInsecurePatientFromRequest is true"
        )
    if getattr(config.authorization, "disableAuthzChecks", False):
        out.append("authorization.disableAuthzChecks is true: any caller sees every study (debug only)")
    return out


def _print_problems(exc: ConfigError) -> None:
    print(f"smart-imaging: {exc.message}", file=sys.stderr)
    for where, what in exc.problems:
        print(f"  {where}: {what}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
