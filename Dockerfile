# The listener image: slim, non-root, only the listener's runtime dependencies.
#   docker buildx build --platform linux/amd64,linux/arm64 -t <registry>/gha-scalesets-listener:<version> .
# gha-scalesets[listener]: the daemon's dependencies, no Pulumi SDK. Without Docker: `make image`
# (buildah). How it is built, tested and released: docs/releases.md.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The package and its [listener] extra, from pyproject.toml: the only dependency list.
COPY pyproject.toml constraints.txt README.md LICENSE ./
COPY gha_scalesets/ gha_scalesets/
COPY scaleset/ scaleset/
COPY providers/ providers/
COPY components/ components/
COPY listener/ listener/
COPY simulator/ simulator/
COPY contract/ contract/
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install -c constraints.txt ".[listener]"
# From /, where the source tree is not importable: what runs is what the wheel installed. Every
# module of the source's listener/ must import from it (a subpackage missing from pyproject's
# packages fails here, not in production).
WORKDIR /
RUN /opt/venv/bin/pip check \
 && /opt/venv/bin/python -m gha_scalesets.listener --help > /dev/null \
 && /opt/venv/bin/python -c "import importlib, pathlib; src = pathlib.Path('/src'); \
[importlib.import_module('gha_scalesets.' + '.'.join(p.relative_to(src).with_suffix('').parts)) \
 for p in sorted(src.glob('listener/**/*.py')) if p.name != '__init__.py']"

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 listener \
 && useradd --system --uid 10001 --gid listener --no-create-home --shell /usr/sbin/nologin listener
COPY --from=build /opt/venv /opt/venv
COPY LICENSE /usr/share/doc/gha-scalesets/LICENSE
LABEL org.opencontainers.image.title="gha-scalesets-listener" \
      org.opencontainers.image.description="Autoscaler for GitHub Actions runner scale sets" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# Numeric, so Kubernetes' runAsNonRoot can verify it; the component runs it read-only.
USER 10001:10001
EXPOSE 9102
ENTRYPOINT ["python", "-m", "gha_scalesets.listener"]
CMD ["run"]
