# syntax=docker/dockerfile:1
# perp-farmer: the supervisor (with [[accounts]]: and a worker process per account), state in /data, health
# through the control socket.
# Needs BuildKit (Docker 23+ default, or DOCKER_BUILDKIT=1): the dependency step is a heredoc RUN.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    APP__DATA_DIR=/data

WORKDIR /app
# Dependencies first, from pyproject.toml alone, so code changes do not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p core storage actors exchanges control fleet \
    && python - <<'PY'
import subprocess, sys, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
subprocess.check_call([sys.executable, "-m", "pip", "install", *deps])
PY
# Only what the package is built from, named one by one (with .dockerignore as a second fence), so a local
# .env, config.toml, .git, tests or database never land in /app.
COPY supervisor.py ./
COPY core ./core
COPY storage ./storage
COPY actors ./actors
COPY exchanges ./exchanges
COPY control ./control
COPY fleet ./fleet
COPY alerts ./alerts
COPY reports ./reports
COPY live ./live
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin farmer \
    && mkdir -p /data && chown farmer /data && chmod 0700 /data

USER farmer
VOLUME ["/data"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=15s --start-period=30s --retries=3 \
    CMD ["python", "/app/supervisor.py", "health"]
ENTRYPOINT ["python", "/app/supervisor.py"]
CMD ["run"]
