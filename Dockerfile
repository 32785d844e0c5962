# syntax=docker/dockerfile:1
# The service image: python -m service under uvicorn, JSON lines on stdout, non-root, no shell needed.
#   docker build -t fastapi-tracking-logs .
#   docker run --rm -p 8000:8000 fastapi-tracking-logs
# It runs the demo app; LOG_DEMO_ROUTES=false leaves only its probes. Your own image builds on this one:
#
#   FROM fastapi-tracking-logs AS base
#   FROM python:3.13.9-slim-trixie AS build
#   COPY --from=base /opt/venv /opt/venv
#   COPY . /src
#   RUN /opt/venv/bin/pip install --no-cache-dir /src        # your package and its dependencies
#   FROM base
#   COPY --from=build /opt/venv /opt/venv
#   CMD ["python", "-m", "service", "--app", "mypkg.main:app", "--host", "0.0.0.0", "--port", "8000"]
#
# (your app calls setup_logging() and adds TrackingIDMiddleware; it must answer GET /healthz for the
# HEALTHCHECK below, or override it). The same Python for both stages: the venv is not portable across them.
ARG PYTHON_IMAGE=python:3.13.9-slim-trixie

# -- build: install the package and its runtime dependencies (from pyproject.toml) into a venv ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
# A wheel of this package, then an install of it: runtime dependencies only, no test extras.
# EXTRAS: optional extras to include, e.g. --build-arg EXTRAS=celery (compose's `jobs` profile).
ARG EXTRAS=""
RUN /opt/venv/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && wheel="$(echo /wheels/*.whl)" \
    && /opt/venv/bin/pip install --no-cache-dir "${wheel}${EXTRAS:+[$EXTRAS]}"

# -- runtime: the venv and nothing else -----------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Numeric, so Kubernetes runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 8000
# No curl in a slim image: ask /healthz with the standard library.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]
# Exec form: python is PID 1 and gets SIGTERM itself, so the service drains its log queue on stop.
CMD ["python", "-m", "service", "--host", "0.0.0.0", "--port", "8000"]
