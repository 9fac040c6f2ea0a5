"""The HTTP face of the Bot API: token check, body parsing, call log, faults, flood limits, envelope."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .errors import NOT_FOUND, UNAUTHORIZED, ApiError, too_many_requests
from .faults import FaultBook, server_error_body
from .methods import BotApi, Described
from .models import ApiCall
from .params import Params, read_params
from .ratelimit import RateLimiter
from .state import World
from .sync import Pulse, wait_until

log = logging.getLogger(__name__)

TOKEN_RE = re.compile(r"(\d+):[A-Za-z0-9_-]{20,}")


class Gateway:
    def __init__(
        self,
        api: BotApi,
        world: World,
        faults: FaultBook,
        limiter: RateLimiter | None,
        calls: list[ApiCall],
        stopping: asyncio.Event,
        required_token: str | None = None,
    ) -> None:
        self.api = api
        self.world = world
        self.faults = faults
        self.limiter = limiter
        self.calls = calls
        self.stopping = stopping
        self.required_token = required_token
        self.calls_changed = Pulse()
        """Fired when a call is received and when it finishes."""

    def check_token(self, token: str) -> int | None:
        """The bot id of a token the stand-in accepts, else None."""
        match = TOKEN_RE.fullmatch(token)
        if match is None or (self.required_token is not None and token != self.required_token):
            return None
        return int(match.group(1))

    async def bot_api(self, request: Request) -> Response:
        at = time.monotonic()
        token = str(request.path_params["token"])
        method = str(request.path_params["method"])
        bot_id = self.check_token(token)
        if bot_id is None:
            return self._log_error(ApiCall(method, {}, at), UNAUTHORIZED)
        self.world.bot_id = bot_id
        entry = self.api.lookup(method)
        if entry is None:
            return self._log_error(ApiCall(method, {}, at), NOT_FOUND)
        name, handler = entry
        try:
            params = await read_params(request)
        except ApiError as exc:
            return self._log_error(ApiCall(name, {}, at), exc)
        chat_id = params.get("chat_id")
        call = ApiCall(name, params, at, chat_id=chat_id if isinstance(chat_id, int) else None)
        self.calls.append(call)
        self.calls_changed.fire()
        try:
            fault = self.faults.take(name, call.chat_id)
            if fault is not None:
                if fault.kind == "slow":
                    await wait_until(self.stopping, time.monotonic() + fault.seconds)
                elif fault.kind == "server_error":
                    content, media_type = server_error_body(fault.status)
                    self._finish(call, fault.status, f"injected {fault.status}")
                    return Response(content, status_code=fault.status, media_type=media_type)
                else:
                    error = fault.error()
                    assert error is not None
                    raise error
            admitted = False
            if self.limiter is not None and self.limiter.applies_to(name):
                retry_after = self.limiter.acquire(call.chat_id)
                if retry_after:
                    raise too_many_requests(retry_after)
                admitted = True
            try:
                result = await handler(Params(params))
            except ApiError:
                if admitted and self.limiter is not None:
                    self.limiter.refund(call.chat_id)
                raise
        except ApiError as exc:
            self._finish(call, exc.code, exc.description)
            return JSONResponse(exc.envelope(), status_code=exc.code)
        except Exception:
            log.exception("Telegram stand-in failed on %s", name)
            self._finish(call, 500, "Internal Server Error")
            return JSONResponse({"ok": False, "error_code": 500, "description": "Internal Server Error"}, 500)
        body: dict[str, Any]
        if isinstance(result, Described):
            body = {"ok": True, "result": result.result, "description": result.description}
        else:
            body = {"ok": True, "result": result}
        self._finish(call, 200, None)
        return JSONResponse(body)

    async def file_download(self, request: Request) -> Response:
        if self.check_token(str(request.path_params["token"])) is None:
            return JSONResponse(UNAUTHORIZED.envelope(), status_code=401)
        stored = self.world.files.by_path(str(request.path_params["path"]))
        if stored is None:
            return JSONResponse(NOT_FOUND.envelope(), status_code=404)
        return Response(stored.data, media_type=stored.mime_type or "application/octet-stream")

    async def not_found(self, request: Request) -> Response:
        return JSONResponse(NOT_FOUND.envelope(), status_code=404)

    def _log_error(self, call: ApiCall, error: ApiError) -> Response:
        self.calls.append(call)
        self.calls_changed.fire()
        self._finish(call, error.code, error.description)
        return JSONResponse(error.envelope(), status_code=error.code)

    def _finish(self, call: ApiCall, status: int, description: str | None) -> None:
        call.status = status
        call.description = description
        call.finished_at = time.monotonic()
        self.calls_changed.fire()
        log.debug("%s chat=%s -> %s %s", call.method, call.chat_id, status, description or "")
