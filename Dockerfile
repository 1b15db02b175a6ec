# syntax=docker/dockerfile:1
# The image of every voting process: `voting command-svc`, `voting worker`, `voting
# projector`, `voting query-svc`, `voting gateway`, and the tools (`voting init`,
# `voting recount`). The Helm chart in k8s/helm/voting runs it.
#
#   docker build -t registry.example.org/voting/voting:0.1.0 .
#
# Two stages: the builder installs the package and its dependencies (wheels only: no
# compiler is needed) into a virtualenv; the final image is the same slim Python with
# that virtualenv copied in, run as an unprivileged user.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/voting
WORKDIR /src
COPY pyproject.toml README.md ./
COPY voting ./voting
COPY command_svc ./command_svc
COPY query_svc ./query_svc
COPY projector ./projector
COPY gateway ./gateway
# The runtime dependencies only (not the dev or local extras); pip compiles the
# bytecode here, since the running container's filesystem is read-only.
RUN /opt/voting/bin/pip install . \
 && /opt/voting/bin/voting --help > /dev/null

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="voting" \
      org.opencontainers.image.description="Real-time voting on CQRS: gRPC services on Kafka, DynamoDB and Redis" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 voting \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
      --shell /usr/sbin/nologin voting
COPY --from=builder /opt/voting /opt/voting
ENV PATH=/opt/voting/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# 50051 command, 50052 query, 50053 worker health, 50054 projector (admin), 8080 gateway
# (HTTP), 8086 plaintext gRPC health for probes, 9464 Prometheus metrics.
EXPOSE 50051 50052 50053 50054 8080 8086 9464
USER 10001:10001
ENTRYPOINT ["voting"]
CMD ["--help"]
