# syntax=docker/dockerfile:1
# The credsmith operator image: `docker build -t credsmith .`
#
# Two stages: the builder makes wheels of the package and installs them, with the
# dependencies `credsmith run` imports (all published as binary wheels), into a virtualenv
# at /opt/credsmith; the final image is a clean python:3.11-slim with only that virtualenv
# copied in: no compilers, no pip, no sources, running as 65532:65532 (the restricted Pod
# Security Standard's non-root user; the chart and deploy/ use the same IDs).
#
# Left out: `kubernetes/aio` (68 MB), the asyncio copy of the generated client that the
# kubernetes package ships but never imports (kubernetes/__init__.py does not; the operator
# uses the client only to read kubeconfig and in-cluster credentials, exec plugins and
# token refresh included, and talks to the API server with aiohttp). Installed size of the
# dependencies (pip into a venv, with .pyc):
#   kubernetes 37.0.3      123.2 MB  (aio 68 MB of it, removed; 5 MB of dependencies of its own)
#   cryptography            16.1 MB   aiohttp 8.4   pydantic + core 9.7   pyyaml 3.2
#   multidict 1.9  jinja2 1.2  cffi 1.2  credsmith 1.0  bcrypt 0.7  prometheus-client 0.5 ...
#   uvloop 14 (the event loop of `credsmith run`)  orjson 0.4 (the wire JSON), added later
#   pip 12.1 and setuptools 8.0 (removed in both stages)
# Image size (`buildah images`, `make image` on its debootstrapped Debian base of 129 MB):
# 244 MB; 312 MB before (kubernetes/aio and pip kept), measured the same day.
# tests/unit/packaging/test_packaging_wheel.py performs the wheel steps outside Docker;
# `make image` builds this file with buildah, and tests/e2e/test_image.py runs the result.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Only what the wheel is built from (.dockerignore keeps the rest out of the context).
COPY pyproject.toml README.md ./
COPY operator/ operator/
COPY verifier/ verifier/
# The venv's own pip builds the wheels: a base's system Python may have no pip (Debian's).
RUN python -m venv /opt/credsmith \
 && /opt/credsmith/bin/pip wheel --no-deps --wheel-dir /wheels ./verifier . \
 && /opt/credsmith/bin/pip install --only-binary=:all: /wheels/*.whl \
 && /opt/credsmith/bin/pip uninstall --yes pip setuptools \
 && rm -rf /opt/credsmith/lib/python3*/site-packages/kubernetes/aio \
 && /opt/credsmith/bin/python -c 'import credsmith.runtime.operator, credsmith.runtime.kube' \
 && /opt/credsmith/bin/credsmith --version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="credsmith" \
      org.opencontainers.image.description="A Kubernetes operator that issues client credentials declaratively" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/credsmith/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# No installer in the final image: the official base's system pip (with setuptools and
# wheel) goes, and so do the wheels ensurepip would install pip from. A no-op on a base
# that has none of them.
RUN if python -c "import pip" 2>/dev/null; then \
      python -m pip uninstall --yes --quiet pip setuptools wheel; \
    fi \
 && rm -rf /usr/share/python-wheels /usr/local/lib/python3*/ensurepip/_bundled
COPY --from=builder /opt/credsmith /opt/credsmith
# Numeric, so the kubelet can verify runAsNonRoot without an /etc/passwd entry.
USER 65532:65532
# 8080: Prometheus /metrics; 8081: /healthz.
EXPOSE 8080 8081
ENTRYPOINT ["/opt/credsmith/bin/credsmith"]
CMD ["run"]
