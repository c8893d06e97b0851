"""`cozeplus <service>` runs one service in the foreground (a container's main process), and
`cozeplus health [service]` probes the one running here (a container's HEALTHCHECK).

Services are found by name (`services.<name>.main`), so a service added later needs no
change here beyond its name in SERVICES and, for a health probe, a line in `probe_target`.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

from services.cli.system import grpc_serving, http_ok

SERVICES = ("registry", "edge", "runner", "knowledge")


def service_main(name: str) -> Callable[[], None] | None:
    """The service's `main`, or None when this install does not have that service."""
    module_name = f"services.{name}.main"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only a missing service is "not installed"; a missing dependency inside it is a bug.
        if exc.name in (f"services.{name}", module_name):
            return None
        raise
    main: Callable[[], None] = module.main
    return main


def run_service(name: str) -> int:
    main = service_main(name)
    if main is None:
        print(f"cozeplus: the {name} service is not part of this install", file=sys.stderr)
        return 2
    main()
    return 0


def _loopback(host: str) -> str:
    """Where a probe on the same machine reaches a server bound to `host`."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::", "[::]") else host


def probe_target(name: str) -> tuple[str, Callable[[], bool]]:
    """What `cozeplus health <name>` checks, from the same settings the service reads."""
    if name == "edge":
        from services.edge.settings import EdgeSettings

        edge = EdgeSettings()
        # /healthz is readiness: registry reachable, NATS connected, chat queue declared.
        url = f"http://{_loopback(edge.host)}:{edge.port}/healthz"
        return url, http_ok(url)
    if name == "registry":
        from services.registry.settings import RegistrySettings

        host, port = RegistrySettings().listen.rsplit(":", 1)
        addr = f"{_loopback(host)}:{port}"
        return f"grpc.health.v1 at {addr}", grpc_serving(addr)
    if name == "runner":
        from services.runner.settings import RunnerSettings

        runner = RunnerSettings()
        if not runner.health_port:
            raise ValueError("COZEPLUS_RUNNER_HEALTH_PORT is 0: the runner serves no /healthz")
        url = f"http://{_loopback(runner.health_host)}:{runner.health_port}/healthz"
        return url, http_ok(url)
    if name == "knowledge":
        # Assumed to mirror the runner (HEALTH_HOST/HEALTH_PORT serving /healthz); read from
        # the environment so this probe does not depend on the worker's settings module.
        host = os.environ.get("COZEPLUS_KNOWLEDGE_HEALTH_HOST", "127.0.0.1")
        port = os.environ.get("COZEPLUS_KNOWLEDGE_HEALTH_PORT", "9101")
        url = f"http://{_loopback(host)}:{port}/healthz"
        return url, http_ok(url)
    raise ValueError(f"no health probe for {name!r} (known: {', '.join(SERVICES)})")


def running_service(cmdline_path: Path = Path("/proc/1/cmdline")) -> str | None:
    """The service a container runs, read from its main process (`cozeplus <service>`)."""
    try:
        args = cmdline_path.read_bytes().split(b"\0")
    except OSError:
        return None
    for arg in args:
        name = arg.decode(errors="replace")
        if name in SERVICES:
            return name
    return None


def health(name: str | None) -> int:
    chosen = name or os.environ.get("COZEPLUS_SERVICE") or running_service()
    if chosen is None:
        print(
            "cozeplus health: name the service (or set COZEPLUS_SERVICE); "
            "PID 1 is not `cozeplus <service>`",
            file=sys.stderr,
        )
        return 2
    try:
        target, probe = probe_target(chosen)
    except ValueError as exc:
        print(f"cozeplus health: {exc}", file=sys.stderr)
        return 2
    if probe():
        print(f"{chosen}: healthy ({target})")
        return 0
    print(f"{chosen}: unhealthy ({target})", file=sys.stderr)
    return 1
