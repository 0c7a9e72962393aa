# imagehost images (deploy/docker-compose.yml builds both):
#   origin   gunicorn + Falcon + libvips (from the pyvips-binary wheel): `imagehost serve`, `worker`, `setup`…
#            Same settings as `make serve` (IMAGEHOST_EDGE=0: the CDN/edge runs as its own service).
#   edge     nginx + njs with the configuration edge/render.py makes from the same IMAGEHOST_* settings
FROM python:3.11-slim-bookworm AS origin

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    IMAGEHOST_HOST=0.0.0.0 \
    IMAGEHOST_PORT=8080 \
    IMAGEHOST_EDGE=0 \
    IMAGEHOST_DATA_DIR=/var/lib/imagehost \
    PROMETHEUS_MULTIPROC_DIR=/tmp/imagehost-metrics

RUN apt-get update \
    && apt-get install -y --no-install-recommends clamav-daemon \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /home/imagehost --uid 10001 imagehost \
    && mkdir -p /var/lib/imagehost && chown imagehost:imagehost /var/lib/imagehost

WORKDIR /app
COPY pyproject.toml README.md ./
COPY origin ./origin
RUN pip install .

USER imagehost
EXPOSE 8080
VOLUME ["/var/lib/imagehost"]
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,os; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['IMAGEHOST_PORT'])"
ENTRYPOINT ["imagehost"]
CMD ["serve"]

FROM origin AS edge
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx-light libnginx-mod-http-js \
    && rm -rf /var/lib/apt/lists/*
COPY edge ./edge
COPY nginx ./nginx
EXPOSE 8080
VOLUME ["/var/cache/imagehost-edge"]
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz')"
ENTRYPOINT ["python", "-m", "edge.render"]
CMD ["--origins", "origin:8080", "--exec"]
