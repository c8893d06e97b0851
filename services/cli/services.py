"""`cozeplus <service>` runs one service in the foreground (a container's main process), and
`cozeplus health [service]` probes the one running here (a container's HEALTHCHECK).

Services are found by name (`services.<name>.main`, `services.<name>.settings`), so a service
added later needs no change here beyond its name in SERVICES and, for a health probe of a new
kind, a line in `probe_target`.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings

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
    if name in ("runner", "knowledge"):
        # Workers serve /healthz on HEALTH_HOST:HEALTH_PORT (200 while NATS is connected).
        worker = _settings_of(name)
        if not worker.health_port:
            raise ValueError(
                f"COZEPLUS_{name.upper()}_HEALTH_PORT is 0: the {name} serves no /healthz"
            )
        url = f"http://{_loopback(worker.health_host)}:{worker.health_port}/healthz"
        return url, http_ok(url)
    raise ValueError(f"no health probe for {name!r} (known: {', '.join(SERVICES)})")


def _settings_of(name: str) -> Any:
    """The service's own settings (services/<name>/settings.py, its one BaseSettings class),
    found by name so a service that is not installed costs nothing here."""
    module = importlib.import_module(f"services.{name}.settings")
    classes = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, BaseSettings)
        and value is not BaseSettings
        and value.__module__ == module.__name__
    ]
    if len(classes) != 1:
        raise ValueError(f"services.{name}.settings has no single settings class")
    return classes[0]()


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
    except ModuleNotFoundError:
        print(f"cozeplus health: the {chosen} service is not part of this install", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"cozeplus health: {exc}", file=sys.stderr)
        return 2
    if probe():
        print(f"{chosen}: healthy ({target})")
        return 0
    print(f"{chosen}: unhealthy ({target})", file=sys.stderr)
    return 1
