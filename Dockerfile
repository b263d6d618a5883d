# One image for web, scheduler and worker. Build the worker with KILN_EXTRAS=gpu for CUDA 12
# machines (CUDA 13 machines: install cupy-cuda13x instead of the gpu extra).
FROM python:3.11-slim

ARG KILN_EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    KILN_DATA_DIR=/data \
    KILN_STATIC_ROOT=/app/static

RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap util-linux \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 kiln

WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY webapp ./webapp
COPY worker ./worker
COPY scheduler ./scheduler
RUN pip install --no-cache-dir ".${KILN_EXTRAS:+[$KILN_EXTRAS]}" \
    && KILN_MODE=production SECRET_KEY=build-time-only-not-a-secret-0123456789abcdef \
       KILN_ALLOWED_HOSTS=build DJANGO_SETTINGS_MODULE=webapp.settings \
       python -m django collectstatic --noinput \
    && mkdir -p /data && chown kiln /data

# web and scheduler run as kiln; the worker service runs as root to sandbox jobs (see docker-compose.yml).
USER kiln
EXPOSE 8000
CMD ["kiln", "web", "--bind", "0.0.0.0:8000"]
