# The listener image: slim, non-root, only the listener's runtime dependencies.
#   docker build -t <registry>/gha-scalesets-listener:<version> .
# gha-scalesets[listener]: the daemon's dependencies, no Pulumi SDK.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The package and its [listener] extra, from pyproject.toml: the only dependency list.
COPY pyproject.toml constraints.txt ./
COPY gha_scalesets/ gha_scalesets/
COPY scaleset/ scaleset/
COPY providers/ providers/
COPY components/ components/
COPY listener/ listener/
COPY simulator/ simulator/
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install -c constraints.txt ".[listener]"
# From /, where the source tree is not importable: what runs is what the wheel installed.
WORKDIR /
RUN /opt/venv/bin/pip check \
 && /opt/venv/bin/python -m gha_scalesets.listener --help > /dev/null

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
ENTRYPOINT ["python", "-m", "gha_scalesets.listener"]
CMD ["run"]
