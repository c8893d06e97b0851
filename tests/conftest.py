"""Session fixtures that start the real system: NATS from the wheel, the registry's gRPC
server, the HTTP edge and runners, each as its own process on loopback ports."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cozeplus.embedded_nats import EmbeddedNats
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.rpc.v1.registry_pb2_grpc import AccountsStub
from cozeplus.service_auth import SERVICE_TOKEN_ENV, service_channel
from services.cli.system import (
    ServiceProcess,
    edge_process,
    free_port,
    http_ok,
    registry_process,
    runner_process,
)

# The service credential the registry asks of every caller (libs/cozeplus/service_auth.py):
# the services started here inherit it from the environment, and the tests' own registry
# channels (service_channel) read it from there too.
os.environ.setdefault(SERVICE_TOKEN_ENV, "test-" + secrets.token_urlsafe(16))


@dataclass
class Account:
    user_id: int
    username: str
    password: str
    token: str
    key_id: int
    headers: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cozeplus")


@pytest.fixture(scope="session")
def nats_server(work_dir: Path) -> Iterator[EmbeddedNats]:
    with EmbeddedNats(work_dir / "nats") as server:
        yield server


@pytest.fixture(scope="session")
def nats_url(nats_server: EmbeddedNats) -> str:
    return nats_server.url


@pytest.fixture(scope="session")
def start_service() -> Iterator[Callable[[ServiceProcess], ServiceProcess]]:
    """Start a service process, wait until healthy, stop it at the end of the session."""
    started: list[ServiceProcess] = []

    def start(service: ServiceProcess) -> ServiceProcess:
        service.start()
        started.append(service)
        service.wait_ready()
        return service

    yield start
    for service in reversed(started):
        service.stop()


@pytest.fixture(scope="session")
def mock_llm_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def models_file(work_dir: Path, mock_llm_port: int) -> Path:
    """Models served by the mock LLM, each behaving as its provider model name says."""
    base_url = f"http://127.0.0.1:{mock_llm_port}/v1"
    path = work_dir / "models.toml"
    path.write_text(
        "\n".join(
            f'[models.{model_id}]\nprovider = "openai"\nbase_url = "{base_url}"\n'
            f'model = "{provider_model}"\nvision = {str(vision).lower()}\n'
            for model_id, provider_model, vision in MOCK_MODELS
        )
    )
    return path


# (catalogue id, model name sent to the mock, vision)
MOCK_MODELS = [
    ("mock", "mock", False),
    ("mock-vision", "mock", True),
    ("mock-echo", "mock-echo", False),
    ("mock-fail", "mock-fail-after-3", False),
    ("mock-error", "mock-status-500", False),
    ("mock-slow", "mock-ttft-60000", False),
    ("mock-stream-slow", "mock-inter-token-200", False),
]


@pytest.fixture(scope="session")
def mock_llm(
    work_dir: Path, mock_llm_port: int, start_service: Callable[[ServiceProcess], ServiceProcess]
) -> str:
    """A local OpenAI-compatible server that streams over real HTTP."""
    start_service(
        ServiceProcess(
            "mock-llm",
            "services.mock_llm",
            {},
            work_dir / "logs" / "mock-llm.log",
            http_ok(f"http://127.0.0.1:{mock_llm_port}/v1/models"),
            args=["--port", str(mock_llm_port)],
        )
    )
    return f"http://127.0.0.1:{mock_llm_port}"


@pytest.fixture(scope="session")
def registry(
    work_dir: Path,
    nats_url: str,
    models_file: Path,
    start_service: Callable[[ServiceProcess], ServiceProcess],
) -> ServiceProcess:
    return start_service(
        registry_process(
            data_dir=work_dir / "registry",
            port=free_port(),
            nats_url=nats_url,
            log_dir=work_dir / "logs",
            extra_env={
                "COZEPLUS_REGISTRY_MODELS_FILE": str(models_file),
                # MCP servers the tests start listen on 127.0.0.1; 127.0.0.2 stays refused.
                "COZEPLUS_REGISTRY_PLUGIN_ALLOWED_NETWORKS": "127.0.0.1/32",
            },
        )
    )


@pytest.fixture(scope="session")
def registry_addr(registry: ServiceProcess) -> str:
    return registry.env["COZEPLUS_REGISTRY_LISTEN"]


@pytest.fixture(scope="session")
def edge(
    work_dir: Path,
    nats_url: str,
    registry_addr: str,
    start_service: Callable[[ServiceProcess], ServiceProcess],
) -> ServiceProcess:
    return start_service(
        edge_process(
            port=free_port(),
            registry_addr=registry_addr,
            nats_url=nats_url,
            log_dir=work_dir / "logs",
        )
    )


@pytest.fixture(scope="session")
def edge_url(edge: ServiceProcess) -> str:
    return f"http://127.0.0.1:{edge.env['COZEPLUS_EDGE_PORT']}"


RUNNER_TEST_ENV = {
    # Short enough that timeout tests finish quickly, long enough for a loaded CI machine.
    "COZEPLUS_RUNNER_MODEL_TIMEOUT_S": "3",
    "COZEPLUS_RUNNER_HEARTBEAT_S": "0.5",
    # Plugin APIs and MCP servers the tests start listen on 127.0.0.1; 127.0.0.2 stays refused.
    "COZEPLUS_RUNNER_PLUGIN_ALLOWED_NETWORKS": "127.0.0.1/32",
    "COZEPLUS_RUNNER_PLUGIN_TIMEOUT_S": "2",
}


@pytest.fixture(scope="session")
def start_runner(
    work_dir: Path,
    nats_url: str,
    registry_addr: str,
    models_file: Path,
    start_service: Callable[[ServiceProcess], ServiceProcess],
) -> Callable[[str], ServiceProcess]:
    """Start one more runner process of the shared pool."""

    def start(name: str) -> ServiceProcess:
        return start_service(
            runner_process(
                health_port=free_port(),
                registry_addr=registry_addr,
                nats_url=nats_url,
                log_dir=work_dir / "logs",
                name=name,
                extra_env={"COZEPLUS_RUNNER_MODELS_FILE": str(models_file), **RUNNER_TEST_ENV},
            )
        )

    return start


@pytest.fixture(scope="session")
def runner(start_runner: Callable[[str], ServiceProcess]) -> ServiceProcess:
    return start_runner("runner")


@pytest.fixture(scope="session")
def make_account(registry_addr: str) -> Iterator[Callable[..., Account]]:
    """Create a fresh user with an API key through the registry's Accounts service."""
    channel = service_channel(registry_addr)
    accounts = AccountsStub(channel)

    def make(expires_in: int = 0) -> Account:
        username = f"user_{secrets.token_hex(6)}"
        password = secrets.token_urlsafe(12)
        user = accounts.CreateUser(pb.CreateUserRequest(username=username, password=password))
        created = accounts.CreateApiKey(
            pb.CreateApiKeyRequest(user_id=user.id, name="test", expires_in=expires_in)
        )
        return Account(
            user_id=user.id,
            username=username,
            password=password,
            token=created.token,
            key_id=created.key.id,
            headers={"Authorization": f"Bearer {created.token}"},
        )

    yield make
    channel.close()


@pytest.fixture
def account(make_account: Callable[..., Account]) -> Account:
    return make_account()
