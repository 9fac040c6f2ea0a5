"""Webhook mode: POST every update to the bot's URL as Telegram's Bot API server does (tdlib/telegram-bot-api,
WebhookActor): one queue per chat, each chat's updates in order and one at a time (the next only once the
last was answered 2xx), different chats in parallel up to ``max_connections`` requests at once; a failed
update is retried with backoff, holding back its own chat only. Updates are taken from the queue in order
while fewer than twice ``max_connections`` chats have some waiting (Telegram's loading window)."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import ipaddress
import itertools
import logging
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import httpx

from .errors import bad_request
from .sync import Pulse
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


def chat_key(update: dict[str, Any]) -> object:
    """The queue an update is delivered in: its chat (a button tap: the chat of its message, else the user
    who tapped); an update about no chat gets a queue of its own, as at Telegram."""
    for key, body in update.items():
        if key == "update_id" or not isinstance(body, dict):
            continue
        chat = body.get("chat")
        if isinstance(chat, dict) and isinstance(chat.get("id"), int):
            return chat["id"]
        message = body.get("message")
        if isinstance(message, dict) and isinstance(message.get("chat"), dict):
            return message["chat"].get("id")
        sender = body.get("from")
        if isinstance(sender, dict) and isinstance(sender.get("id"), int):
            return sender["id"]
    return ("update", update.get("update_id"))


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
        self._answered = Pulse()  # a delivery finished: a connection and maybe a chat are free
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._sending: set[asyncio.Task[None]] = set()
        # What is loaded from the queue: update ids per chat, in order; chats ready to send their first, as a
        # heap of (when, sequence, chat); each update's next backoff.
        self._generation = 0
        self._loaded: dict[object, deque[int]] = {}
        self._ready: list[tuple[float, int, object]] = []
        self._order = itertools.count()
        self._delay: dict[int, float] = {}
        self._next_load: int | None = None

    @property
    def active(self) -> bool:
        return bool(self.url)

    def set(self, url: str, secret: str | None, max_connections: int) -> None:
        if url != self.url:
            self._forget()  # a new address gets every pending update again, from the first
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
        self._forget()
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
        sending, self._sending = self._sending, set()
        for pending in [*([task] if task is not None else []), *sending]:
            pending.cancel()
        for pending in [*([task] if task is not None else []), *sending]:
            with contextlib.suppress(asyncio.CancelledError):
                await pending
        self._forget()  # what was under way is still in the queue: sent again after a restart
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _forget(self) -> None:
        """Drop what was loaded (it stays in the queue); deliveries under way finish on their own."""
        self._generation += 1
        self._loaded = {}
        self._ready = []
        self._delay = {}
        self._next_load = None

    def _load(self) -> None:
        """Take new updates from the queue, in order, while fewer than 2 * max_connections chats wait."""
        if self._next_load is None:
            first = self.queue.first_id()
            self._next_load = self.queue.next_id if first is None else first
        now = time.monotonic()
        while self._next_load < self.queue.next_id and len(self._loaded) < 2 * self.max_connections:
            update_id = self._next_load
            self._next_load += 1
            update = self.queue.get(update_id)
            if update is None:
                continue  # confirmed or dropped meanwhile
            key = chat_key(update)
            waiting = self._loaded.get(key)
            if waiting is None:
                self._loaded[key] = deque([update_id])
                heapq.heappush(self._ready, (now, next(self._order), key))
            else:
                waiting.append(update_id)

    async def _run(self) -> None:
        while self.url and not self.queue.closing:
            changed = self.queue.changed.current()
            kicked = self._kick.current()
            answered = self._answered.current()
            self._load()
            now = time.monotonic()
            while len(self._sending) < self.max_connections and self._ready and self._ready[0][0] <= now:
                _, _, key = heapq.heappop(self._ready)
                self._start(key)
            deadline = self._ready[0][0] if self._ready else now + 3600.0
            if len(self._sending) >= self.max_connections:
                deadline = now + 3600.0  # a connection must come free first
            waiters = [asyncio.ensure_future(e.wait()) for e in (changed, kicked, answered)]
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()

    def _start(self, key: object) -> None:
        """Send the first waiting update of chat `key` (its chat is off the ready heap until answered)."""
        waiting = self._loaded[key]
        while waiting and self.queue.get(waiting[0]) is None:
            waiting.popleft()  # confirmed or dropped meanwhile
        if not waiting:
            del self._loaded[key]
            return
        update = self.queue.get(waiting[0])
        assert update is not None
        task = asyncio.get_running_loop().create_task(
            self._send(key, update, self._generation), name="telegram-standin-webhook-send"
        )
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, key: object, update: dict[str, Any], generation: int) -> None:
        update_id = update["update_id"]
        try:
            error = await self._deliver(self.url, self.secret, update)
        finally:
            self._answered.fire()
        if error is None:
            self.queue.remove(update_id)
            self.deliveries += 1
        else:
            self.last_error_date = int(time.time())
            self.last_error_message = error
            log.debug("webhook delivery of update %s failed: %s", update_id, error)
        if generation != self._generation:
            return  # the webhook changed meanwhile: what is left is loaded again for the new one
        now = time.monotonic()
        waiting = self._loaded.get(key)
        if waiting is None:
            return
        if error is None:
            self._delay.pop(update_id, None)
            waiting.popleft()
            if not waiting:
                del self._loaded[key]
                return
            heapq.heappush(self._ready, (now, next(self._order), key))
            return
        delay = self._delay.get(update_id, self.retry_initial)
        self._delay[update_id] = min(delay * 2, self.retry_max)
        heapq.heappush(self._ready, (now + delay, next(self._order), key))

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
