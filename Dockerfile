FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    ENABLE_WEB_INTERFACE=true \
    PORT=8000

RUN pip install --no-cache-dir uv

WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY metric_tracker_rl ./metric_tracker_rl
COPY server ./server
COPY openenv.yaml inference.py* ./
RUN uv sync --frozen --no-dev

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"

CMD ["uv", "run", "--frozen", "--no-dev", "server", "--host", "0.0.0.0", "--port", "8000"]
