# The bot in HTTP mode on waitress (see README: Deploying). Build: docker build -t invite-bot .
# Run:   docker run --env-file .env -p 3000:3000 -v invite-bot-data:/data invite-bot
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
RUN pip install . \
    && useradd --create-home --uid 10001 invitebot \
    && mkdir /data && chown invitebot /data

USER invitebot
# The store (requests, audit log, invitation codes: keep the volume private) lives on a volume.
# glibc's per-thread caches off (bot/runtime/allocator.py): set here, serve need not start twice.
ENV INVITE_DB_PATH=/data/invite-bot.sqlite \
    HOST=0.0.0.0 \
    PORT=3000 \
    GLIBC_TUNABLES=glibc.malloc.tcache_count=0
VOLUME ["/data"]
EXPOSE 3000

HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=2)"]
# SIGTERM lets running invitations finish (up to 25 s); give docker stop at least that.
STOPSIGNAL SIGTERM
CMD ["invite-bot", "serve", "--http"]
