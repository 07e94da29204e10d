"""``cityx serve``, ``cityx worker`` and ``cityx users``: start the server and its job
worker, manage who may use it.

``cityx users add`` prints the new API token alone on standard output (so
``TOKEN=$(cityx users add ...)`` works); everything else goes to standard
error. There are no default users and no default passwords.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .common import EXIT_INPUT, EXIT_OK, Subparsers, add_command, add_group, emit

if TYPE_CHECKING:
    from cityx.server import ServerConfig

ROLES = ("regulator", "vendor", "red-teamer", "overseer", "auditor", "admin")


def register(sub: Subparsers) -> None:
    serve = add_command(
        sub,
        "serve",
        "Start the CityXchange server (JSON API under /api/v1) on the store.",
        "cityx serve --store sqlite:///cityx.db --port 8765 --duration 2",
        _serve,
    )
    _store_options(serve)
    serve.add_argument("--host", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: 8000)")
    serve.add_argument("--duration", type=float, metavar="S", help="stop by itself after S seconds")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="load the demo's trial and make one user per role, printing their credentials",
    )
    serve.add_argument("--ssl-certfile", type=Path, help="serve TLS with this certificate")
    serve.add_argument("--ssl-keyfile", type=Path, help="the TLS certificate's private key")

    worker = add_command(
        sub,
        "worker",
        "Run the server's job worker on the store (when the server sets embedded_worker = false).",
        "cityx worker --store sqlite:///cityx.db --duration 2",
        _worker,
    )
    _store_options(worker)
    worker.add_argument(
        "--duration", type=float, metavar="S", help="stop by itself after S seconds"
    )

    users = add_group(sub, "users", "Add, list or revoke the server's users and tokens.")
    add = add_command(
        users,
        "add",
        "Add a user and print its new API token (alone, on stdout).",
        "cityx users add alice --org city --role regulator --store sqlite:///cityx.db",
        _users_add,
    )
    add.add_argument("name", metavar="NAME")
    add.add_argument("--org", required=True, help="the user's organisation")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--budget", type=int, metavar="N", help="query units per model")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read a password for the browser from stdin (at least 12 characters)",
    )
    add.add_argument(
        "--scope",
        action="append",
        metavar="PERMISSION",
        help="narrow the token to this permission (repeatable; default: all the role's)",
    )
    add.add_argument("--expires-days", type=int, metavar="D", help="token lifetime (default: 90)")
    _store_options(add)
    listing = add_command(
        users,
        "list",
        "List the users: organisation, role, budget.",
        "cityx users list --store sqlite:///cityx.db --json",
        _users_list,
    )
    _store_options(listing)
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    revoke = add_command(
        users,
        "revoke",
        "Revoke all of a user's tokens and sessions (or one token with --token-id).",
        "cityx users revoke alice --store sqlite:///cityx.db",
        _users_revoke,
    )
    revoke.add_argument("name", metavar="NAME")
    revoke.add_argument("--token-id", help="revoke only this token")
    _store_options(revoke)


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", help="store URL (default: SQLite in the user data folder)")
    parser.add_argument(
        "--config", type=Path, metavar="TOML", help="server configuration ([server] table)"
    )


def _config(args: argparse.Namespace) -> ServerConfig:
    # lazy: cityx --help stays fast
    from cityx.server import load_config

    return load_config(
        args.config,
        overrides={
            "store": args.store,
            "host": getattr(args, "host", None),
            "port": getattr(args, "port", None),
        },
    )


def _serve(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.server.demo import load_demo
    from cityx.server.run import serve
    from cityx.store import Store

    config = _config(args)

    def ready(store: Store) -> None:
        if args.demo:
            for user in load_demo(store, config):
                if user.token is None:
                    sys.stderr.write(f"{user.name}: exists already, credentials unchanged\n")
                    continue
                sys.stderr.write(
                    f"{user.name} ({user.role}, {user.organisation}): password "
                    f"{user.password} token {user.token}\n"
                )
        sys.stderr.write(
            f"cityx server on http://{config.host}:{config.port}/api/v1 "
            f"(store {store.display_url})\n"
        )

    serve(
        config,
        duration_s=args.duration,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        on_ready=ready,
    )
    return EXIT_OK


def _worker(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.server.queue import run_worker

    config = _config(args)
    sys.stderr.write(
        f"cityx worker: {config.trial_workers} job(s) at a time; stop it with Ctrl-C "
        "(running jobs finish) or SIGTERM (they run again at the next start)\n"
    )
    run_worker(config, duration_s=args.duration)
    return EXIT_OK


def _users_add(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.server import Role, add_user
    from cityx.store import Store

    config = _config(args)
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    with Store.open(config.store) as store:
        issued = add_user(
            store,
            args.name,
            organisation=args.org,
            role=Role(args.role),
            city=config.city,
            budget=args.budget,
            password=password,
            scopes=tuple(args.scope or ("*",)),
            token_days=args.expires_days or config.token_days,
        )
    sys.stdout.write(issued.token + "\n")
    sys.stderr.write(
        f"user {args.name} added; token {issued.token_id} expires {issued.expires_at}. "
        "It is shown once: keep it now.\n"
    )
    return EXIT_OK


def _users_list(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.store import Store

    config = _config(args)
    with Store.open(config.store) as store:
        users = store.users()
    rows = [
        {
            "name": u.name,
            "organisation": u.organisation,
            "role": u.role,
            "budget": u.budget,
            "has_password": u.has_password,
        }
        for u in users
    ]
    text = "\n".join(
        f"{r['name']:<16} {r['organisation']:<20} {r['role']:<11} "
        f"budget {'-' if r['budget'] is None else r['budget']}"
        for r in rows
    )
    emit(args, {"users": rows}, text or "no users")
    return EXIT_OK


def _users_revoke(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.store import Store

    config = _config(args)
    with Store.open(config.store) as store:
        if store.user(args.name) is None:
            sys.stderr.write(f"cityx: error: no user {args.name!r}\n")
            return EXIT_INPUT
        if args.token_id:
            found = store.token(args.token_id)
            if found is None or found.user.name != args.name:
                sys.stderr.write(f"cityx: error: {args.name} has no token {args.token_id!r}\n")
                return EXIT_INPUT
            count = store.revoke_tokens(actor="cityx-cli", token_id=args.token_id)
        else:
            count = store.revoke_tokens(actor="cityx-cli", user_name=args.name)
    sys.stdout.write(f"revoked {count} token(s) of {args.name}\n")
    return EXIT_OK
