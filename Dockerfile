# syntax=docker/dockerfile:1
# The credsmith operator image: `docker build -t credsmith .`
#
# Two stages: the builder makes a wheel of the package and installs it, with its
# dependencies (all published as binary wheels), into a virtualenv at /opt/credsmith;
# the final image is a clean python:3.11-slim with only that virtualenv copied in: no
# compilers, no pip, no sources, running as 65532:65532 (the restricted Pod Security
# Standard's non-root user; the chart and deploy/ use the same IDs).
# tests/unit/packaging/test_packaging_wheel.py performs these steps outside Docker;
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
