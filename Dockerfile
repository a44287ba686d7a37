# A Hugging Face Space runs this image as UID 1000 with /app owned by root: the command below starts the
# synced virtualenv's own entry point, which writes nothing under /app and needs no uv cache. A plain `docker run`
# runs it as UID 1000 too (USER below).
# The layers go from what changes least to what changes most: the dependencies are synced from the lock file
# before any source is copied, so a code edit rebuilds only the last layers. .dockerignore keeps the build context
# to what the COPY lines take (`uv run python -m lab.speed.image_context` measures it without Docker).
# tests/test_image.py reproduces this build and start without Docker. Settings: docs/deployment.md.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PORT=8000 \
    MAX_SESSIONS_PER_CLIENT=8

RUN pip install --no-cache-dir uv==0.13.9

WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY README.md LICENSE openenv.yaml ./
COPY metric_tracker_rl ./metric_tracker_rl
COPY server ./server
COPY inference.py* ./
RUN uv sync --frozen --no-dev

USER 1000
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/app/.venv/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/health\", timeout=4)"]

CMD ["/app/.venv/bin/server", "--host", "0.0.0.0"]
