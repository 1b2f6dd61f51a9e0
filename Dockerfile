# syntax=docker/dockerfile:1
# One image for every wacast process: `docker run wacast device-gateway` (or campaign-service,
# sequence-service, report-service, api-gateway, webhook-service, wa-simulator, or
# `wacast <command>` for the CLI, e.g. `docker run wacast wacast backup /backups/today`). Build: `docker build -t wacast .`
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- builder: the locked virtualenv, without dev dependencies ---------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
# The same uv as ./dev installs (UV_VERSION there); a test keeps the two equal.
RUN pip install "uv==0.13.9"
WORKDIR /src
# Dependencies first, from the lock file alone, so that code changes reuse this layer.
COPY pyproject.toml uv.lock ./
COPY libs/contracts/pyproject.toml libs/contracts/
COPY libs/runtime/pyproject.toml libs/runtime/
COPY libs/cli/pyproject.toml libs/cli/
COPY services/device-gateway/pyproject.toml services/device-gateway/
COPY services/campaign-service/pyproject.toml services/campaign-service/
COPY services/sequence-service/pyproject.toml services/sequence-service/
COPY services/report-service/pyproject.toml services/report-service/
COPY services/api-gateway/pyproject.toml services/api-gateway/
COPY services/wa-simulator/pyproject.toml services/wa-simulator/
COPY services/webhook-service/pyproject.toml services/webhook-service/
RUN uv sync --frozen --no-dev --all-packages --no-install-workspace
# Then the workspace members themselves, installed (not linked) into the virtualenv.
COPY libs libs
COPY services services
RUN uv sync --frozen --no-dev --all-packages --no-editable

# -- runtime: the virtualenv and an entrypoint, run as an unprivileged user -------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="wacast" \
      org.opencontainers.image.description="WhatsApp broadcast campaigns and drip sequences over NATS JetStream"
RUN groupadd --system --gid 10001 wacast \
    && useradd --system --uid 10001 --gid wacast --home-dir /home/wacast --create-home \
       --shell /usr/sbin/nologin wacast \
    && mkdir -p /data/var/sessions && chown -R wacast:wacast /data
COPY --from=builder /app/.venv /app/.venv
COPY deploy/docker/entrypoint.sh /usr/local/bin/wacast-entrypoint
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WACAST_HTTP_HOST=0.0.0.0 \
    WACAST_SIM_HOST=0.0.0.0
WORKDIR /data
USER 10001:10001
# api-gateway 8080, device-gateway 8081, campaign-service 8082, sequence-service 8083,
# report-service 8084, webhook-service 8085, wa-simulator 8099 (each serves /healthz, /readyz
# and /metrics there).
EXPOSE 8080 8081 8082 8083 8084 8085 8099
ENTRYPOINT ["/usr/local/bin/wacast-entrypoint"]
CMD ["help"]
