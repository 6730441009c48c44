# sori origin + packager. Build: docker build -t sori .   Run: docker run -p 8080:8080 sori
# The same image runs the queue's packaging workers: docker run sori sori worker
# (with SORI_JOBS_BACKEND=redis; docker-compose.yml runs a cluster of both).
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg espeak-ng nodejs npm \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY setup.cfg pyproject.toml README.md config.toml ./
# every package setup.cfg lists (tests/unit/test_deploy_files.py checks the two agree)
COPY sori sori
COPY settings settings
COPY manifests manifests
COPY signing signing
COPY packager packager
COPY storage storage
COPY origin origin
COPY jobqueue jobqueue
COPY analytics analytics
COPY player player
# editable, so the origin finds player/ and its node_modules beside the code
RUN pip install --no-cache-dir -e . \
 && cd player && npm ci --omit=dev --no-audit --no-fund && cd .. \
 && mkdir -p /data/media /data/uploads && chown -R nobody /data

ENV SORI_CONFIG=/app/config.toml \
    SORI_STORAGE_ROOT=/data/media \
    SORI_ORIGIN_UPLOAD_DIR=/data/uploads
VOLUME /data
EXPOSE 8080
USER nobody
CMD ["sori", "serve", "--host", "0.0.0.0", "--port", "8080"]
