# syntax=docker/dockerfile:1
# Two-stage venv images (kopf's pattern). Targets:
#   runtime  – the ladts CLI without torch (what runs beside kube-scheduler in the cluster)
#   trainer  – adds torch for offline training (`--target trainer`), e.g. as a Kubernetes Job
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY policy/src policy/src
COPY operator/src operator/src
RUN python -m venv /opt/ladts \
 && /opt/ladts/bin/pip install --upgrade pip \
 && /opt/ladts/bin/pip install .

FROM build AS build-trainer
RUN /opt/ladts/bin/pip install '.[train]'

FROM python:${PYTHON_VERSION}-slim AS runtime
# Non-root, and nothing written outside /tmp, so the pod can run with
# readOnlyRootFilesystem: true and an emptyDir on /tmp.
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin ladts
COPY --from=build /opt/ladts /opt/ladts
ENV PATH=/opt/ladts/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib
USER 10001
WORKDIR /tmp
ENTRYPOINT ["ladts"]
CMD ["--help"]

FROM runtime AS trainer
COPY --from=build-trainer /opt/ladts /opt/ladts
