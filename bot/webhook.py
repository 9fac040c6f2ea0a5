"""Webhook mode: Telegram posts each update to us (PTB's custom-webhook pattern, on Starlette and uvicorn).

An update is answered 200 once it is stored in the inbox (bot.intake), and handled from there: a process that
dies after that loses nothing (any instance takes the inbox's leftovers when their lease runs out), and one
that dies before it never said 200, so Telegram posts the update again. An update posted twice is stored once.
A request without the right secret header is refused.

Beside the webhook, unless STATUS_PORT gives them a port of their own: `/healthz`, `/readyz` and `/metrics`
(bot.status). Only the webhook's path should be reachable from the internet.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import Update
from telegram.ext import Application

from bot.intake.grouped import GroupedIntake
from bot.intake.polling import Intake
from bot.intake.processor import answer_crisis_without_database
from bot.status import LocalServer, StatusEndpoints

if TYPE_CHECKING:
    from prometheus_client import Counter

    from bot.runtime import Runtime

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
MAX_BODY_BYTES = 1_000_000  # an update is a few kilobytes; anything this big is not from Telegram


async def _read_body(request: Request) -> bytes | None:
    """The body, or None as soon as it passes MAX_BODY_BYTES: a chunked body has no Content-Length to
    refuse up front, so the limit holds while reading, and the rest is never read."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return None
    return bytes(body)


def _too_large(refused: Counter) -> Response:
    """413, and the connection closed after it: otherwise uvicorn would go on reading (and dropping) the rest
    of the body, for as long as the sender cares to send."""
    refused.labels("too_large").inc()
    log.warning("event=webhook.refused reason=too_large")
    return Response(status_code=413, headers={"connection": "close"})


class WebhookServer:
    def __init__(
        self,
        runtime: Runtime,
        application: Application,  # type: ignore[type-arg]
        intake: Intake,
        *,
        status: StatusEndpoints | None,
    ) -> None:
        """`status`: the endpoints to serve beside the webhook (None when they have a port of their own)."""
        self.runtime = runtime
        self.application = application
        self.intake = GroupedIntake(runtime, intake)
        self.status = status
        self.url, self._secret = runtime.settings.require_webhook()
        self.path = urlsplit(self.url).path or "/"
        settings = runtime.settings
        self.server = LocalServer(settings.webhook_listen, settings.webhook_port, name="webhook")

    def web_app(self) -> Starlette:
        status = self.status.routes() if self.status is not None else []
        return Starlette(routes=[Route(self.path, self.receive, methods=["POST"]), *status])

    async def receive(self, request: Request) -> Response:
        refused = self.runtime.metrics.webhook_refused
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self._secret.encode()):
            refused.labels("secret").inc()
            log.warning("event=webhook.refused reason=secret")
            return Response(status_code=403)
        length = request.headers.get("content-length", "")
        if length.isdecimal() and int(length) > MAX_BODY_BYTES:
            return _too_large(refused)
        try:
            body = await _read_body(request)
        except ClientDisconnect:
            log.warning("event=webhook.refused reason=disconnected")
            return Response(status_code=400)
        if body is None:
            return _too_large(refused)
        data = self._update(body)
        if data is None:
            refused.labels("body").inc()
            log.warning("event=webhook.refused reason=body")
            return Response(status_code=400)
        # Stored before Telegram hears 200 (with the other posts under way: bot.intake.grouped): a crash
        # after this loses nothing. If it cannot be stored, 503 makes Telegram send it again; an
        # imminent-risk message is answered from content meanwhile.
        try:
            await self.intake.store(data)
        except Exception as error:
            log.error("event=webhook.store_failed kind=%s", type(error).__name__)
            await answer_crisis_without_database(self.runtime, self.application.bot, data)
            return Response(status_code=503)
        return Response(status_code=200)

    def _update(self, body: bytes) -> dict[str, Any] | None:
        """The update in `body` (as JSON data, to store), or None when it is not one: not JSON, not an object
        with an integer update_id, or a shape PTB cannot read. Telegram never sends those, so none is worth a
        traceback (and the body, a patient's words if it were real, is never logged)."""
        try:
            data: Any = json.loads(body)
        except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            return None
        update_id = data.get("update_id") if isinstance(data, dict) else None
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            return None
        try:
            Update.de_json(data, self.application.bot)
        except Exception:  # PTB's parsing raises whatever a wrong field's type leads to
            return None
        return data if isinstance(data, dict) else None

    def listen(self) -> None:
        """Take the port first, so a taken one stops start-up before anything else happens."""
        self.server.listen()

    async def start(self) -> None:
        """Serve, then tell Telegram where to post (every instance registers the same URL)."""
        await self.server.start(self.web_app())
        await self.application.bot.set_webhook(
            self.url,
            secret_token=self._secret,
            allowed_updates=Update.ALL_TYPES,
            max_connections=self.runtime.settings.webhook_max_connections,
            drop_pending_updates=False,
        )
        log.info("event=webhook.listening port=%d", self.server.port)

    async def stop(self) -> None:
        """Take no new requests; let those under way finish (their updates are handled and answered).

        The webhook stays registered: other instances go on serving it, and Telegram keeps what comes
        meanwhile for when one is back."""
        await self.server.stop()
