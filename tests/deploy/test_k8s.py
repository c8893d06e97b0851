"""Every overlay renders with `kubectl kustomize` and validates: built-in kinds against the
Kubernetes JSON schemas (kubernetes-validate, strict: unknown fields are errors), KEDA's
ScaledObject and the Prometheus Operator's ServiceMonitor against models generated from
their CRD schemas (cloudcoil), plus what the deployment itself needs of them."""

from __future__ import annotations

import copy
import re
import tomllib
from typing import Any

import kubernetes_validate
import pytest
from cloudcoil.models.keda import v1alpha1 as keda
from cloudcoil.models.prometheus_operator import v1 as monitoring
from pydantic import BaseModel

from cozeplus import subjects
from cozeplus.subjects import CHAT_REQUEST_STREAM, CHAT_RUNNER_CONSUMER
from tests.deploy.manifests import OVERLAYS, Doc, by_kind, render_overlay, workloads

# The oldest Kubernetes these manifests promise to work on (native gRPC probes are GA in 1.27).
KUBERNETES_VERSION = "1.30.0"
CRD_MODELS: dict[str, type[BaseModel]] = {
    "ScaledObject": keda.ScaledObject,
    "ServiceMonitor": monitoring.ServiceMonitor,
}
WORKERS = ("runner", "knowledge")


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[Doc]]:
    name: str = request.param
    return name, render_overlay(name)


def crd_errors(doc: Doc) -> list[str]:
    """Validate with the CRD's model, then make sure the model kept every field: a field the
    CRD schema does not know would be dropped, so it is an error here, as `kubectl apply`
    with server-side field validation makes it one."""
    model = CRD_MODELS[doc["kind"]].model_validate(doc)
    kept = model.model_dump(by_alias=True, exclude_unset=True)
    return [
        f"{doc['kind']}/{doc['metadata']['name']}: {path} is not in the CRD schema"
        for path in _dropped(doc, kept, "")
    ]


def _dropped(original: Any, kept: Any, path: str) -> list[str]:
    if isinstance(original, dict):
        missing = [f"{path}.{k}" for k in original if k not in kept]
        return missing + [
            p for k in original if k in kept for p in _dropped(original[k], kept[k], f"{path}.{k}")
        ]
    if isinstance(original, list):
        return [
            p
            for i, (o, k) in enumerate(zip(original, kept, strict=True))
            for p in _dropped(o, k, f"{path}[{i}]")
        ]
    return []


def validation_errors(doc: Doc) -> list[str]:
    if doc["kind"] in CRD_MODELS:
        return crd_errors(doc)
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        return [f"{doc['kind']}/{doc['metadata']['name']}: {err.message} at {list(err.path)}"]
    return []


def test_overlay_validates_against_kubernetes_and_crd_schemas(
    overlay: tuple[str, list[Doc]],
) -> None:
    _, docs = overlay
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "StatefulSet", "ScaledObject", "NetworkPolicy"} <= kinds
    errors = [e for doc in docs for e in validation_errors(doc)]
    assert errors == []


def test_the_validators_reject_broken_manifests() -> None:
    docs = render_overlay("dev")
    edge = copy.deepcopy(workloads(docs)["edge"])
    container = edge["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"] = {"httpGet": {}}  # no port
    assert validation_errors(edge)
    edge = copy.deepcopy(workloads(docs)["edge"])
    edge["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}  # a typo
    assert validation_errors(edge)
    scaled = copy.deepcopy(by_kind(docs, "ScaledObject")["runner"])
    scaled["spec"]["minReplicaCount"] = "one"
    with pytest.raises(ValueError):
        crd_errors(scaled)
    scaled = copy.deepcopy(by_kind(docs, "ScaledObject")["runner"])
    scaled["spec"]["minReplicas"] = 1
    assert crd_errors(scaled) == ["ScaledObject/runner: .spec.minReplicas is not in the CRD schema"]


def test_every_pod_is_locked_down(overlay: tuple[str, list[Doc]]) -> None:
    _, docs = overlay
    for name, workload in workloads(docs).items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert {"cpu", "memory"} <= set(resources["limits"]), name
            if container["image"].rsplit("/", 1)[-1].startswith("cozeplus"):
                mounts = {m["mountPath"] for m in container["volumeMounts"]}
                assert "/tmp" in mounts, f"{name}: a read-only root needs a writable /tmp"


def test_every_workload_has_a_disruption_budget(overlay: tuple[str, list[Doc]]) -> None:
    _, docs = overlay
    budgets = by_kind(docs, "PodDisruptionBudget")
    for name, workload in workloads(docs).items():
        if name == "postgres":
            continue  # one in-cluster dev database: a budget would only block node drains
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert any(
            b["spec"]["selector"]["matchLabels"].items() <= labels.items() for b in budgets.values()
        ), name


def test_edge_scales_on_cpu_and_is_ready_only_with_its_dependencies(
    overlay: tuple[str, list[Doc]],
) -> None:
    _, docs = overlay
    edge = workloads(docs)["edge"]["spec"]["template"]["spec"]["containers"][0]
    assert edge["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert edge["livenessProbe"]["httpGet"]["path"] == "/livez"
    hpa = by_kind(docs, "HorizontalPodAutoscaler")["edge"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "edge"
    # Autoscaled workloads leave the count to their autoscaler (an apply would reset it).
    for autoscaled in ("edge", "runner", "knowledge"):
        assert "replicas" not in workloads(docs)[autoscaled]["spec"], autoscaled
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    ports = {p["name"]: p["port"] for p in by_kind(docs, "Service")["edge"]["spec"]["ports"]}
    assert ports == {"http": 8080, "grpc": 50061}


def test_ingress_is_safe_for_server_sent_events_and_exposes_grpc(
    overlay: tuple[str, list[Doc]],
) -> None:
    _, docs = overlay
    ingresses = by_kind(docs, "Ingress")
    http = ingresses["edge"]["metadata"]["annotations"]
    assert http["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert int(http["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 600
    assert int(http["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 600
    grpc = ingresses["edge-grpc"]
    assert grpc["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == (
        "GRPC"
    )
    backend = grpc["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "edge", "port": {"name": "grpc"}}


def test_registry_uses_native_grpc_probes_and_runs_replicated(
    overlay: tuple[str, list[Doc]],
) -> None:
    name, docs = overlay
    registry = workloads(docs)["registry"]
    container = registry["spec"]["template"]["spec"]["containers"][0]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == 50051
    if name.startswith("prod"):
        assert registry["spec"]["replicas"] >= 2
    env = {e["name"]: e for e in container["env"]}
    ref = env["COZEPLUS_REGISTRY_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref["key"] == "url"
    assert re.fullmatch(r"cozeplus-database(-[a-z0-9]{10})?", ref["name"])


def settings(docs: list[Doc]) -> dict[str, str]:
    data: dict[str, str] = by_kind(docs, "ConfigMap")["cozeplus-settings"]["data"]
    return data


def test_workers_scale_on_their_consumer_lag(overlay: tuple[str, list[Doc]]) -> None:
    """KEDA's ScaledObject CRD does not constrain the trigger metadata (a string map), so the
    nats-jetstream scaler's fields are checked here by hand."""
    _, docs = overlay
    scaled = by_kind(docs, "ScaledObject")
    nats_service = by_kind(docs, "Service")["nats"]
    namespace = nats_service["metadata"]["namespace"]
    monitor_port = next(p["port"] for p in nats_service["spec"]["ports"] if p["name"] == "monitor")
    expected_queue = {
        "runner": (CHAT_REQUEST_STREAM, CHAT_RUNNER_CONSUMER),
        "knowledge": (
            getattr(subjects, "KNOWLEDGE_INGEST_STREAM", "COZEPLUS_KNOWLEDGE_INGEST"),
            getattr(subjects, "KNOWLEDGE_WORKER_CONSUMER", "knowledge-workers"),
        ),
    }
    for worker in WORKERS:
        spec = scaled[worker]["spec"]
        assert spec["scaleTargetRef"]["name"] == worker
        assert worker in workloads(docs)
        assert spec["minReplicaCount"] >= 1
        assert spec["maxReplicaCount"] > spec["minReplicaCount"]
        queue_triggers = [t for t in spec["triggers"] if t["type"] == "nats-jetstream"]
        assert len(queue_triggers) == 1
        meta = queue_triggers[0]["metadata"]
        assert meta["natsServerMonitoringEndpoint"] == (
            f"nats.{namespace}.svc.cluster.local:{monitor_port}"
        )
        assert meta["account"] == "$G"
        assert (meta["stream"], meta["consumer"]) == expected_queue[worker]
        concurrency = int(settings(docs)[f"COZEPLUS_{worker.upper()}_CONCURRENCY"])
        assert int(meta["lagThreshold"]) == max(1, concurrency * 3 // 4)


def test_workers_outlive_their_drain(overlay: tuple[str, list[Doc]]) -> None:
    _, docs = overlay
    runner = workloads(docs)["runner"]["spec"]["template"]["spec"]
    pre_stop = runner["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    drain = float(settings(docs)["COZEPLUS_RUNNER_SHUTDOWN_GRACE_S"])
    # preStop + the fetch loop's exit (<= 5 s) + the drain + cancellation (<= 5 s).
    assert runner["terminationGracePeriodSeconds"] > int(pre_stop[1]) + 5 + drain + 5
    knowledge = workloads(docs)["knowledge"]["spec"]["template"]["spec"]
    assert "preStop" in knowledge["containers"][0]["lifecycle"]


def test_network_policies_admit_only_the_system(overlay: tuple[str, list[Doc]]) -> None:
    _, docs = overlay
    policies = by_kind(docs, "NetworkPolicy")
    registry = policies["registry"]
    assert registry["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "registry"}
    (rule,) = registry["spec"]["ingress"]
    (peer,) = rule["from"]
    (expression,) = peer["podSelector"]["matchExpressions"]
    assert set(expression["values"]) == {"edge", "runner", "knowledge"}
    nats = policies["nats"]["spec"]["ingress"]
    client_rule = next(r for r in nats if {"port": 4222, "protocol": "TCP"} in r["ports"])
    assert client_rule["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "cozeplus"}}}
    ]
    # Every cozeplus pod carries the label the NATS policy admits.
    for name, workload in workloads(docs).items():
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert labels.get("app.kubernetes.io/part-of") == "cozeplus", name


def test_every_cozeplus_container_holds_the_service_credential_from_a_secret(
    overlay: tuple[str, list[Doc]],
) -> None:
    _, docs = overlay
    for name in ("registry", "edge", "runner", "knowledge"):
        container = workloads(docs)[name]["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        ref = env["COZEPLUS_SERVICE_TOKEN"]["valueFrom"]["secretKeyRef"]
        assert re.fullmatch(r"cozeplus-internal(-[a-z0-9]{10})?", ref["name"]), name
        assert ref["key"] == "service-token"


def test_registry_replicas_share_the_key_sealing_plugin_secrets(
    overlay: tuple[str, list[Doc]],
) -> None:
    _, docs = overlay
    container = workloads(docs)["registry"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    ref = env["COZEPLUS_REGISTRY_SECRET_KEY"]["valueFrom"]["secretKeyRef"]
    assert re.fullmatch(r"cozeplus-internal(-[a-z0-9]{10})?", ref["name"])
    assert ref["key"] == "plugin-secret-key"


def test_settings_and_models_come_from_config_maps(overlay: tuple[str, list[Doc]]) -> None:
    _, docs = overlay
    models = by_kind(docs, "ConfigMap")["cozeplus-models"]["data"]["models.toml"]
    assert isinstance(tomllib.loads(models), dict)
    for name in ("registry", "runner", "knowledge"):
        pod = workloads(docs)[name]["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        generated = by_kind(docs, "ConfigMap")
        assert (
            volumes["models"]["configMap"]["name"]
            == (generated["cozeplus-models"]["metadata"]["name"])
        )
        env_from = pod["containers"][0]["envFrom"]
        settings_name = generated["cozeplus-settings"]["metadata"]["name"]
        assert {"configMapRef": {"name": settings_name}} in env_from
    # Keys never sit in a ConfigMap.
    for config_map in by_kind(docs, "ConfigMap").values():
        for key, value in config_map.get("data", {}).items():
            assert not re.search(r"(password|token|secret|api_key)=", f"{key}={value}", re.I)


def test_dev_runs_one_nats_and_postgres_in_the_cluster() -> None:
    docs = render_overlay("dev")
    nats = workloads(docs)["nats"]
    assert nats["spec"]["replicas"] == 1
    assert "postgres" in workloads(docs)
    assert (
        "cluster {"
        not in by_kind(docs, "ConfigMap")[_config_name(docs, "nats")]["data"]["nats.conf"]
    )
    secrets = by_kind(docs, "Secret")
    assert {"cozeplus-database", "cozeplus-internal", "cozeplus-postgres"} <= set(secrets)
    assert by_kind(docs, "NetworkPolicy")["postgres"]["spec"]["ingress"][0]["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "registry"}}}
    ]


def _config_name(docs: list[Doc], workload: str) -> str:
    """The ConfigMap the workload mounts, by its name before kustomize's hash."""
    pod = workloads(docs)[workload]["spec"]["template"]["spec"]
    mounted = next(v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v)
    return next(
        name
        for name, doc in by_kind(docs, "ConfigMap").items()
        if doc["metadata"]["name"] == mounted
    )


def test_prod_runs_a_three_node_jetstream_cluster_with_three_replicas() -> None:
    docs = render_overlay("prod")
    nats = workloads(docs)["nats"]
    assert nats["spec"]["replicas"] == 3
    assert nats["spec"]["podManagementPolicy"] == "Parallel"
    conf = by_kind(docs, "ConfigMap")[_config_name(docs, "nats")]["data"]["nats.conf"]
    routes = re.findall(r"nats://(nats-\d)\.nats-headless:6222", conf)
    assert routes == [f"nats-{i}" for i in range(3)], "one route per StatefulSet pod"
    assert "server_name: $POD_NAME" in conf
    env = settings(docs)
    for service in ("EDGE", "REGISTRY", "RUNNER", "KNOWLEDGE"):
        assert env[f"COZEPLUS_{service}_NATS_REPLICAS"] == "3"
        urls = env[f"COZEPLUS_{service}_NATS_URL"].split(",")
        assert [u.split("//")[1].split(".")[0] for u in urls] == ["nats-0", "nats-1", "nats-2"]
    # PostgreSQL is external: no database in the cluster, no generated credentials.
    assert "postgres" not in workloads(docs)
    assert "Secret" not in {d["kind"] for d in docs}


def test_service_monitors_only_where_asked_for() -> None:
    assert "ServiceMonitor" not in {d["kind"] for d in render_overlay("prod")}
    monitors = by_kind(render_overlay("prod-monitoring"), "ServiceMonitor")
    assert set(monitors) == {"edge", "runner"}
    assert monitors["runner"]["spec"]["endpoints"][0]["port"] == "metrics"
