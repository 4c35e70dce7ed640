# syntax=docker/dockerfile:1
# The production image. By default it runs the web process (admin, Telegram webhook, /healthz); the
# worker, beat and the polling bot run the same image with another command (docker-compose.yml,
# railway/*.json, Procfile).
#
# The Python version is the one in .python-version: `make image` passes it as PYTHON_VERSION, and
# tests/ops/test_deploy_files.py checks that the default below equals it.
ARG PYTHON_VERSION=3.11

# --- builder: the production lock only (requirements/prod.txt, every hash checked) into a venv ----------
FROM python:${PYTHON_VERSION}-slim-bookworm AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# A compiler and headers, in case a dependency has no wheel for the build platform (none on amd64/arm64
# today); they stay in this stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
COPY requirements/prod.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --require-hashes -r /tmp/requirements.txt

# --- runtime: slim, the venv and the product's code, a non-root user ---------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8000 \
    MEDIA_ROOT=/app/media \
    CELERY_BEAT_SCHEDULE_FILENAME=/app/var/celerybeat-schedule
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
# The product only: no tests, benchmarks, docs or sandbox (see .dockerignore too). Owned by root, so
# the app user cannot change its own code.
COPY manage.py ./
COPY config ./config
COPY botapp ./botapp
# Static files are collected into the image (WhiteNoise serves them). The settings refuse to load with
# DEBUG off and a public or weak SECRET_KEY, so this one step gets a random key made for it; it is not in
# the image or its environment: the containers need their own SECRET_KEY to start.
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
        CELERY_BROKER_FOLDER=/tmp/collectstatic-broker \
        python manage.py collectstatic --noinput -v0 \
    && rm -rf /tmp/collectstatic-broker \
    && python -m compileall -q config botapp
# Writable by the app user: local media (a volume, or S3 with AWS_STORAGE_BUCKET_NAME) and beat's schedule.
RUN mkdir -p /app/media /app/var && chown app:app /app/media /app/var
USER app
EXPOSE 8000
# The web process's health (the database, the cache, the broker); compose turns it off for the others.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 CMD ["python", "-m", "config.healthcheck"]
CMD ["sh", "-c", "exec uvicorn config.asgi:application --host 0.0.0.0 --port ${PORT:-8000} --lifespan off"]
