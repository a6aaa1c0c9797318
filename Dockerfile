# syntax=docker/dockerfile:1
# Two-stage venv images (kopf's pattern). Targets:
#   runtime  – `ladts serve` and the CLI without torch, matplotlib or numba: what runs beside
#              kube-scheduler in the chart's pod (helm/ladts-scheduler)
#   trainer  – adds torch, matplotlib and numba for offline training (`--target trainer`), e.g. as a
#              Kubernetes Job
#   docker build --target runtime -t REGISTRY/ladts:0.1.0 .
# The runtime dependency set is printed by docker/runtime_requirements.py and checked without
# a Docker engine by docker/check_runtime_env.py (clean venv, no torch, `ladts serve --help`).
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY docker/runtime_requirements.py docker/
COPY policy/src policy/src
COPY operator/src operator/src
# Dependencies first (the runtime set only), then ladts itself without resolving again; the
# wheel carries the bundled policy (ladts_policy/bundled/lad-ts.onnx), which `ladts serve`
# loads by default.
RUN python -m venv /opt/ladts \
 && python docker/runtime_requirements.py > /tmp/runtime-requirements.txt \
 && /opt/ladts/bin/pip install --requirement /tmp/runtime-requirements.txt \
 && /opt/ladts/bin/pip install --no-deps .

FROM build AS build-trainer
RUN /opt/ladts/bin/pip install '.[train,serve]'

FROM python:${PYTHON_VERSION}-slim AS runtime
# Non-root, and nothing written outside /tmp (bytecode is compiled at install time), so the
# pod runs with readOnlyRootFilesystem: true and an emptyDir on /tmp.
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin ladts
COPY --from=build /opt/ladts /opt/ladts
ENV PATH=/opt/ladts/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib
USER 10001
WORKDIR /tmp
ENTRYPOINT ["ladts"]
CMD ["--help"]

FROM runtime AS trainer
COPY --from=build-trainer /opt/ladts /opt/ladts
