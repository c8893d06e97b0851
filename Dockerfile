# syntax=docker/dockerfile:1.7
# One image for every cozeplus service; the command picks which one runs:
#   docker run cozeplus registry | edge | runner | knowledge
# NATS and PostgreSQL run from their own images (docker-compose.yml, k8s/).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: turn the project and its dependencies into wheels --------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY libs ./libs
COPY protos ./protos
COPY services ./services
# Every dependency ships manylinux wheels, so no compiler is needed even here.
RUN pip wheel --wheel-dir /wheels .

# ---- final: a venv holding only the wheels, run as an unprivileged user ------------------
FROM ${PYTHON_IMAGE} AS final
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/cozeplus/bin:$PATH
# The wheels are bind-mounted from the builder, so they never become a layer of this image;
# pip itself is removed from the venv afterwards (nothing installs at run time).
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m venv /opt/cozeplus \
    && /opt/cozeplus/bin/pip install --no-index --find-links /wheels cozeplus \
    && /opt/cozeplus/bin/pip uninstall --yes pip \
    && groupadd --system --gid 10001 cozeplus \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin cozeplus \
    && mkdir -p /var/lib/cozeplus \
    && chown 10001:10001 /var/lib/cozeplus

# Inside a container every server binds all interfaces, workers serve /healthz (the runner on
# 9100 by default, knowledge here on 9101), and a SQLite registry keeps its file in
# /var/lib/cozeplus (a volume), PostgreSQL needs COZEPLUS_REGISTRY_DATABASE_URL instead.
ENV COZEPLUS_EDGE_HOST=0.0.0.0 \
    COZEPLUS_REGISTRY_LISTEN=0.0.0.0:50051 \
    COZEPLUS_REGISTRY_DATA_DIR=/var/lib/cozeplus \
    COZEPLUS_RUNNER_HEALTH_HOST=0.0.0.0 \
    COZEPLUS_KNOWLEDGE_HEALTH_HOST=0.0.0.0 \
    COZEPLUS_KNOWLEDGE_HEALTH_PORT=9101

WORKDIR /var/lib/cozeplus
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# edge HTTP, edge gRPC, registry gRPC, runner /healthz + /metrics, knowledge /healthz
EXPOSE 8080 50061 50051 9100 9101

# `cozeplus health` finds the service from PID 1's command line and probes it the way its
# settings say: the edge's /healthz (registry and NATS reachable), the registry's
# grpc.health.v1, a worker's /healthz (NATS connected).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["cozeplus", "health"]

ENTRYPOINT ["cozeplus"]
CMD ["edge"]
