"""Webhook mode: POST every update, in order, to the bot's URL; retry with backoff until it answers 2xx."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from .errors import bad_request
from .sync import Pulse, wait_until
from .updates import UpdateQueue

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
_SECRET_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def check_webhook_url(url: str) -> None:
    """Only loopback targets: the stand-in must never send traffic anywhere else."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    host = parts.hostname
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise bad_request("bad webhook: the Telegram stand-in only delivers to loopback addresses (127.0.0.1)")


def check_secret(secret: str) -> None:
    if not 1 <= len(secret) <= 256 or not set(secret) <= _SECRET_CHARS:
        raise bad_request("secret token contains unallowed characters")


class Webhook:
    def __init__(
        self,
        queue: UpdateQueue,
        *,
        retry_initial: float = 0.05,
        retry_max: float = 2.0,
        timeout: float = 10.0,
    ) -> None:
        self.queue = queue
        self.url = ""
        self.secret: str | None = None
        self.max_connections = 40
        self.last_error_date: int | None = None
        self.last_error_message: str | None = None
        self.deliveries = 0
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.timeout = timeout
        self._kick = Pulse()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    @property
    def active(self) -> bool:
        return bool(self.url)

    def set(self, url: str, secret: str | None, max_connections: int) -> None:
        self.url = url
        self.secret = secret
        self.max_connections = max_connections
        self.last_error_date = None
        self.last_error_message = None
        self._kick.fire()
        self.resume()

    def resume(self) -> None:
        """Restart delivery after :meth:`close` (the stand-in was restarted) if a webhook is set."""
        if self.url and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._run(), name="telegram-standin-webhook")

    def delete(self) -> None:
        self.url = ""
        self.secret = None
        self._kick.fire()

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.url,
            "has_custom_certificate": False,
            "pending_update_count": self.queue.pending_count,
        }
        if self.url:
            info["max_connections"] = self.max_connections
            info["ip_address"] = "127.0.0.1"
            if self.queue.allowed_list is not None:
                info["allowed_updates"] = self.queue.allowed_list
        if self.last_error_date is not None:
            info["last_error_date"] = self.last_error_date
            info["last_error_message"] = self.last_error_message
        return info

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        delay = self.retry_initial
        while self.url and not self.queue.closing:
            changed = self.queue.changed.current()
            kicked = self._kick.current()
            update = self.queue.first()
            if update is None:
                waiters = [asyncio.ensure_future(changed.wait()), asyncio.ensure_future(kicked.wait())]
                try:
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        waiter.cancel()
                continue
            url, secret = self.url, self.secret
            error = await self._deliver(url, secret, update)
            if url != self.url:
                continue  # the webhook changed meanwhile: deliver to the new one
            if error is None:
                self.queue.remove(update["update_id"])
                self.deliveries += 1
                delay = self.retry_initial
                continue
            self.last_error_date = int(time.time())
            self.last_error_message = error
            log.debug("webhook delivery of update %s failed: %s", update["update_id"], error)
            await wait_until(kicked, time.monotonic() + delay)
            delay = min(delay * 2, self.retry_max)

    async def _deliver(self, url: str, secret: str | None, update: dict[str, Any]) -> str | None:
        if self._client is None:
            self._client = httpx.AsyncClient(trust_env=False, timeout=self.timeout)
        headers = {SECRET_HEADER: secret} if secret else {}
        try:
            response = await self._client.post(url, json=update, headers=headers)
        except httpx.TimeoutException:
            return "Read timeout expired"
        except httpx.ConnectError:
            return "Connection refused"
        except httpx.HTTPError as exc:
            return f"Connection failed: {exc.__class__.__name__}"
        if 200 <= response.status_code < 300:
            return None
        return f"Wrong response from the webhook: {response.status_code} {response.reason_phrase}"
