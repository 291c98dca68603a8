# syntax=docker/dockerfile:1
# Evently's production image: the locked production dependencies (requirements.lock, no
# embedded servers) and the evently wheel in a venv, on a slim runtime, as a non-root user.
#   docker build -t evently .          (docker compose builds it for every app service)
# requirements.lock is kept current by .ci/check-lock (docs/deployment.md).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: wheel of the project + locked dependencies, verified by hash --------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/evently
WORKDIR /src

# dependencies first: this layer is rebuilt only when the lock changes
COPY requirements.lock ./
RUN /opt/evently/bin/pip install --require-hashes --no-deps --only-binary=:all: \
        -r requirements.lock

COPY pyproject.toml README.md ./
COPY api api
COPY workflows workflows
COPY activities activities
COPY workers workers
COPY evently evently
COPY migrations migrations
COPY bench bench
COPY cli cli
# the project itself carries no hash: build its wheel, install it without dependencies (all
# of them came from the lock above; `pip check` fails the build if the lock misses one)
RUN /opt/evently/bin/pip wheel --no-deps --wheel-dir /dist . \
    && /opt/evently/bin/pip install --no-deps /dist/*.whl \
    && /opt/evently/bin/pip check

# ---- runtime: no compiler, no sources, no pip cache; a non-root user -------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/evently/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    EVENTLY_ENV=production
RUN groupadd --system --gid 10001 evently \
    && useradd --system --uid 10001 --gid evently --home-dir /home/evently --create-home \
        --shell /usr/sbin/nologin evently
COPY --from=builder /opt/evently /opt/evently
USER evently:evently
WORKDIR /home/evently
EXPOSE 8000
CMD ["evently", "api", "--host", "0.0.0.0"]
