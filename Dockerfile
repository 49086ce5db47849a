# The listener image: slim, non-root, only the listener's runtime dependencies.
#   docker build -t <registry>/gha-scalesets-listener:<version> .
# The Pulumi SDKs in pyproject.toml are for deploying, not for running: they stay out.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml constraints.txt ./
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install -c constraints.txt \
      "httpx[http2]" pydantic pydantic-settings "pyjwt[crypto]" cryptography cachetools \
      prometheus-client structlog typer pyyaml boto3 starlette uvicorn kubernetes-asyncio sniffio
COPY scaleset/ scaleset/
COPY listener/ listener/
RUN /opt/venv/bin/pip install --no-deps . \
 && /opt/venv/bin/python -m listener --help > /dev/null

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 listener \
 && useradd --system --uid 10001 --gid listener --no-create-home --shell /usr/sbin/nologin listener
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# Numeric, so Kubernetes' runAsNonRoot can verify it; the component runs it read-only.
USER 10001:10001
EXPOSE 9102
ENTRYPOINT ["python", "-m", "listener"]
CMD ["run"]
