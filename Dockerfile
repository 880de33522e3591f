# ACW Streams worker image: slim, non-root, pinned. No Docker engine runs on our machines; this is for deployments.
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    ACW_DATA_DIR=/var/lib/acw ACW_METRICS_HOST=0.0.0.0 ACW_METRICS_PORT=9108
RUN useradd --system --uid 10001 --home-dir /app acw && mkdir -p /var/lib/acw && chown acw /var/lib/acw
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY schemas ./schemas
# A regular install: the schemas travel inside the package (streams.schemas), the sources can go.
RUN pip install . && rm -rf /app/streams /app/schemas /app/pyproject.toml
USER acw
EXPOSE 9108
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"ACW_METRICS_PORT\"]}/metrics', timeout=2)"
ENTRYPOINT ["acw"]
CMD ["worker"]
