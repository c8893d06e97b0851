"""`cozeplus up`: the whole system on one machine with embedded defaults."""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc

from cozeplus.embedded_nats import EmbeddedNats
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.rpc.v1.registry_pb2_grpc import AccountsStub
from cozeplus.service_auth import SERVICE_TOKEN_ENV, ensure_token_file, service_channel
from services.cli.system import (
    ServiceProcess,
    edge_process,
    free_port,
    knowledge_process,
    registry_process,
    runner_process,
)

ADMIN_USERNAME = "admin"
ADMIN_FILE = "admin.json"


@dataclass
class UpOptions:
    data_dir: Path
    edge_host: str
    edge_port: int
    registry_port: int
    nats_port: int
    grpc_port: int
    models_file: Path | None


def ensure_admin(registry_addr: str, data_dir: Path, service_token: str) -> dict[str, object]:
    """Create the local admin account and API key on first run; reuse them afterwards."""
    path = data_dir / ADMIN_FILE
    with service_channel(registry_addr, service_token) as channel:
        accounts = AccountsStub(channel)
        if path.exists():
            admin: dict[str, object] = json.loads(path.read_text())
            try:
                accounts.Authenticate(pb.AuthenticateRequest(token=str(admin["api_key"])))
                return admin
            except grpc.RpcError as err:
                if err.code() != grpc.StatusCode.UNAUTHENTICATED:
                    raise
            # The key was revoked or expired: give the admin a fresh one.
            user = accounts.GetUser(pb.GetUserRequest(username=ADMIN_USERNAME))
        else:
            password = secrets.token_urlsafe(12)
            user = accounts.CreateUser(
                pb.CreateUserRequest(
                    username=ADMIN_USERNAME, password=password, display_name="Administrator"
                )
            )
            admin = {"username": ADMIN_USERNAME, "password": password}
        created = accounts.CreateApiKey(pb.CreateApiKeyRequest(user_id=user.id, name="admin"))
    admin.update(user_id=str(user.id), api_key=created.token)
    path.write_text(json.dumps(admin, indent=2) + "\n")
    path.chmod(0o600)
    return admin


def run_up(options: UpOptions) -> int:
    data_dir = options.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_dir = data_dir / "logs"
    nats = EmbeddedNats(data_dir / "nats", port=options.nats_port)
    registry_addr = f"127.0.0.1:{options.registry_port}"
    # The service credential every service presents to the registry; kept in the data dir,
    # where the operator commands find it too.
    service_token = ensure_token_file(data_dir)
    token_env = {SERVICE_TOKEN_ENV: service_token}
    models_env = (
        {"COZEPLUS_REGISTRY_MODELS_FILE": str(options.models_file.resolve())}
        if options.models_file
        else {}
    )
    services: list[ServiceProcess] = []
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        print(f"cozeplus: data in {data_dir}", flush=True)
        nats_url = nats.start()
        print(f"cozeplus: nats      {nats_url}", flush=True)
        registry = registry_process(
            data_dir=data_dir,
            port=options.registry_port,
            nats_url=nats_url,
            log_dir=log_dir,
            extra_env={**models_env, **token_env},
        )
        edge = edge_process(
            host=options.edge_host,
            port=options.edge_port,
            registry_addr=registry_addr,
            nats_url=nats_url,
            log_dir=log_dir,
            extra_env={**token_env, "COZEPLUS_EDGE_GRPC_PORT": str(options.grpc_port)},
        )
        runner = runner_process(
            health_port=free_port(),
            registry_addr=registry_addr,
            nats_url=nats_url,
            log_dir=log_dir,
            extra_env={
                **token_env,
                **(
                    {"COZEPLUS_RUNNER_MODELS_FILE": models_env["COZEPLUS_REGISTRY_MODELS_FILE"]}
                    if models_env
                    else {}
                ),
            },
        )
        knowledge = knowledge_process(
            health_port=free_port(),
            registry_addr=registry_addr,
            nats_url=nats_url,
            log_dir=log_dir,
            extra_env={
                **token_env,
                **(
                    {"COZEPLUS_KNOWLEDGE_MODELS_FILE": models_env["COZEPLUS_REGISTRY_MODELS_FILE"]}
                    if models_env
                    else {}
                ),
            },
        )
        for service in (registry, edge, runner, knowledge):
            service.start()
            services.append(service)
            service.wait_ready()
            print(f"cozeplus: {service.name:<9} ready (log: {service.log_path})", flush=True)
        admin = ensure_admin(registry_addr, data_dir, service_token)
        host = "127.0.0.1" if options.edge_host in ("0.0.0.0", "::") else options.edge_host
        print(
            f"\ncozeplus is up: http://{host}:{options.edge_port}\n"
            f"  admin user:    {admin['username']} (password in {data_dir / ADMIN_FILE})\n"
            f"  admin API key: {admin['api_key']}\n"
            f"  API docs:      http://{host}:{options.edge_port}/docs\n"
            f"gRPC API: {host}:{options.grpc_port}\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        while not stop.wait(0.5):
            for service in services:
                if not service.alive:
                    print(f"cozeplus: {service.name} died:\n{service.log_tail()}", file=sys.stderr)
                    return 1
        return 0
    except (RuntimeError, TimeoutError) as err:
        print(f"cozeplus: {err}", file=sys.stderr)
        return 1
    finally:
        print("\ncozeplus: stopping", flush=True)
        for service in reversed(services):
            service.stop()
        nats.stop()
        print("cozeplus: stopped", flush=True)


def default_data_dir() -> Path:
    return Path(os.environ.get("COZEPLUS_DATA_DIR", ".cozeplus"))
