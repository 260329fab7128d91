# Builds with BuildKit and with the classic builder (DOCKER_BUILDKIT=0); no syntax directive, so
# no frontend image has to be pulled.
# PainPath container image: FastAPI CDS service served by uvicorn via `painpath serve`.
#
# Two stages:
#   builder  builds the painpath wheel and installs it (and its dependencies) into /opt/venv
#   runtime  copies only /opt/venv, so no compilers, pip caches or sources end up in the image
# Both stages use the same base image, so the venv's interpreter (python3 of the base, e.g.
# /usr/local/bin/python3.11 or /usr/bin/python3.11) exists in the runtime stage.

# BASE_IMAGE: any Debian-like image with Python 3.11 (`python3` and its venv module; a `python`
# command is not needed). The default is a public one, pinned to a full patch tag (not the moving
# `3.11-slim`) so rebuilds are reproducible; bump deliberately. For stricter pinning append
# `@sha256:<index digest>`. Where no registry is reachable, a base made with debootstrap works
# the same way (docs/container.md).
ARG BASE_IMAGE=python:3.11.13-slim-bookworm

FROM ${BASE_IMAGE} AS builder

# CA_BUNDLE: path (inside the build context) of a CA file for pip, for networks that present their
# own certificate chain. Empty by default. It is used by pip in this stage only; the runtime stage
# copies nothing but /opt/venv, so the file never reaches the final image. pyproject.toml is listed
# too so that the COPY has a source when CA_BUNDLE is empty.
ARG CA_BUNDLE=""

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python3 -m venv /opt/venv

COPY pyproject.toml ${CA_BUNDLE} /tmp/pip-ca/

WORKDIR /src
# README.md is referenced by pyproject.toml; the wildcard keeps the build working while it is
# absent (BuildKit allows an empty wildcard match as long as another source matches).
COPY pyproject.toml setup.py MANIFEST.in README.md* ./
COPY service ./service
# the conformance package: setup.py puts it into the wheel as service/fhir_profiles
COPY fhir_profiles ./fhir_profiles

RUN if [ -n "$CA_BUNDLE" ]; then export PIP_CERT="/tmp/pip-ca/${CA_BUNDLE##*/}"; fi \
 && /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/venv/bin/pip install /wheels/painpath-*.whl


FROM ${BASE_IMAGE} AS runtime

# Numeric uid/gid so orchestrators (e.g. Kubernetes runAsNonRoot) can verify "not root".
RUN groupadd --system --gid 10001 painpath \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin painpath

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PAINPATH_HOST=0.0.0.0 \
    PAINPATH_PORT=8080

WORKDIR /app
# The conformance resources served at GET /fhir/{type}/{id} (docs/interface.md, Routes) are in
# the installed package (service/fhir_profiles); PAINPATH_PROFILES_DIR may point elsewhere.
USER 10001:10001

EXPOSE 8080

# python:*-slim has no curl or wget, so probe with the standard library. urlopen raises on
# connection errors and on non-2xx statuses, which makes the interpreter exit non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PAINPATH_PORT', '8080') + '/healthz', timeout=4)"]

CMD ["painpath", "serve"]
