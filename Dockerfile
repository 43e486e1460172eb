# syntax=docker/dockerfile:1
# mediagate: slim, multi-stage, non-root. Build: docker build -t mediagate .
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Dependencies first (PyAV, aiortc and friends ship manylinux wheels: no compiler needed).
COPY pyproject.toml README.md ./
COPY gateway/__init__.py gateway/__init__.py
RUN pip install --upgrade pip==25.2 \
    && pip install . \
    && pip uninstall --yes mediagate
# Then the application itself, installed in place so specs/ and migrations/ sit beside it.
COPY gateway gateway
COPY media media
COPY migrations migrations
COPY specs specs
RUN pip install --no-deps -e .

FROM python:3.11-slim-bookworm
# srt-live-transmit for the Punch relay fallback.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends srt-tools=1.5.* \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 mediagate \
    && useradd --system --uid 10001 --gid mediagate --home-dir /data --shell /usr/sbin/nologin mediagate \
    && mkdir -p /data \
    && chown mediagate:mediagate /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MEDIAGATE_DATA_DIR=/data \
    MEDIAGATE_BIND=0.0.0.0:8080 \
    MEDIAGATE_ICE_PORT_RANGE=40000-40031
WORKDIR /data
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080/tcp 40000-40031/udp
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["mediagate"]
CMD ["serve"]
