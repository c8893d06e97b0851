"""The `cozeplus` command: run the system or one of its services, operate it, and run the mock
model server."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import grpc

from services.cli import operator
from services.cli.services import SERVICES, health, run_service
from services.cli.up import UpOptions, default_data_dir, run_up


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cozeplus", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run NATS, the registry, the edge and a runner on this machine")
    up.add_argument("--data-dir", type=Path, default=default_data_dir())
    up.add_argument("--host", default="127.0.0.1", help="address the HTTP edge binds")
    up.add_argument("--port", type=int, default=8080, help="HTTP edge port")
    up.add_argument("--registry-port", type=int, default=50051)
    up.add_argument("--nats-port", type=int, default=0, help="0 picks a free port")
    up.add_argument("--models-file", type=Path, default=None)

    registry_default = os.environ.get("COZEPLUS_REGISTRY_ADDR", "127.0.0.1:50051")

    users = sub.add_parser("users", help="manage accounts").add_subparsers(
        dest="action", required=True
    )
    create_user = users.add_parser("create")
    create_user.add_argument("username")
    create_user.add_argument("--password", help="prompted for (or generated) when omitted")
    create_user.add_argument("--display-name", default="")
    create_user.add_argument("--registry", default=registry_default)
    delete_user = users.add_parser(
        "delete",
        help="delete an account: its API keys and sessions stop working on every edge at once",
    )
    delete_user.add_argument("username")
    delete_user.add_argument("--registry", default=registry_default)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(
        dest="action", required=True
    )
    for name in ("create", "list", "revoke"):
        action = keys.add_parser(name)
        action.add_argument("--user", default="admin", help="the key owner's username")
        action.add_argument("--registry", default=registry_default)
        if name == "create":
            action.add_argument("--name", default="cli")
            action.add_argument("--expires-in-days", type=float, default=0, help="0 = never")
        if name == "revoke":
            action.add_argument("key_id", type=int)

    limits = sub.add_parser("limits", help="per-account rate limits (requests per window)")
    limits.add_argument("--user", required=True, help="the account's username")
    for name in ("chat", "bot-management", "bot-info", "other"):
        limits.add_argument(f"--{name}", type=int, default=None)
    limits.add_argument("--reset", action="store_true", help="back to the edge defaults")
    limits.add_argument("--registry", default=registry_default)
    limits.add_argument(
        "--nats", default=os.environ.get("COZEPLUS_NATS_URL", "nats://127.0.0.1:4222")
    )

    sub.add_parser("mock-llm", help="a local OpenAI-compatible server for tests", add_help=False)
    for name in SERVICES:
        # Settings come from the environment (COZEPLUS_<SERVICE>_*), not from arguments.
        sub.add_parser(name, help=f"run the {name} service in the foreground (a container's main)")
    probe = sub.add_parser("health", help="exit 0 when the service running here is healthy")
    probe.add_argument(
        "service",
        nargs="?",
        choices=SERVICES,
        help="default: $COZEPLUS_SERVICE, else the service PID 1 runs (in a container)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["mock-llm"]:
        from services.mock_llm.main import main as mock_llm_main

        mock_llm_main(argv[1:])
        return 0
    args = _parser().parse_args(argv)
    if args.command in SERVICES:
        return run_service(args.command)
    if args.command == "health":
        return health(args.service)
    try:
        if args.command == "up":
            return run_up(
                UpOptions(
                    data_dir=args.data_dir,
                    edge_host=args.host,
                    edge_port=args.port,
                    registry_port=args.registry_port,
                    nats_port=args.nats_port,
                    models_file=args.models_file,
                )
            )
        if args.command == "limits":
            chosen = {
                name: getattr(args, name)
                for name in ("chat", "bot_management", "bot_info", "other")
                if getattr(args, name) is not None
            }
            if not chosen and not args.reset:
                print("cozeplus: name a limit (--chat N, ...) or --reset", file=sys.stderr)
                return 2
            return operator.set_limits(args.registry, args.nats, args.user, chosen)
        if args.command == "users":
            if args.action == "delete":
                return operator.delete_user(args.registry, args.username)
            return operator.create_user(
                args.registry, args.username, args.password, args.display_name
            )
        if args.action == "create":
            return operator.create_key(args.registry, args.user, args.name, args.expires_in_days)
        if args.action == "list":
            return operator.list_keys(args.registry, args.user)
        return operator.revoke_key(args.registry, args.user, args.key_id)
    except grpc.RpcError as err:
        print(f"cozeplus: {err.code().name.lower()}: {err.details()}", file=sys.stderr)
        return 1
