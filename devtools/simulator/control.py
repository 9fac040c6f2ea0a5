"""``/_sim/...``: a thin JSON wrapper over the user side, so another process can drive the stand-in.

Every endpoint answers ``{"ok": true, "result": ...}``; bad input gives 400 and a wait that times out
gives 408, both as ``{"ok": false, "description": ...}``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .faults import Fault

if TYPE_CHECKING:
    from .standin import TelegramStandIn

Endpoint = Callable[[Request], Awaitable[Response]]


def _ok(result: Any) -> JSONResponse:
    return JSONResponse({"ok": True, "result": result})


def _fail(status: int, description: str) -> JSONResponse:
    return JSONResponse({"ok": False, "description": description}, status_code=status)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def _guard(handler: Callable[[Request], Awaitable[Any]]) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        try:
            return _ok(await handler(request))
        except AssertionError as exc:
            return _fail(408, str(exc))
        except (ValueError, KeyError, TypeError) as exc:
            return _fail(400, f"{exc.__class__.__name__}: {exc}")

    return endpoint


def control_routes(sim: TelegramStandIn) -> list[BaseRoute]:
    async def send_text(request: Request) -> Any:
        b = await _body(request)
        message_id = await sim.send_text(
            int(b["user_id"]),
            str(b["text"]),
            first_name=str(b.get("first_name", "Test")),
            language_code=b.get("language_code", "en"),
            chat_id=None if b.get("chat_id") is None else int(b["chat_id"]),
            chat_type=str(b.get("chat_type", "private")),
            forward_from_user_id=None
            if b.get("forward_from_user_id") is None
            else int(b["forward_from_user_id"]),
        )
        return {"message_id": message_id}

    async def send_sticker(request: Request) -> Any:
        b = await _body(request)
        return {"message_id": await sim.send_sticker(int(b["user_id"]), emoji=str(b.get("emoji", "🙂")))}

    async def send_photo(request: Request) -> Any:
        b = await _body(request)
        return {"message_id": await sim.send_photo(int(b["user_id"]), caption=b.get("caption"))}

    async def send_voice(request: Request) -> Any:
        b = await _body(request)
        return {"message_id": await sim.send_voice(int(b["user_id"]), duration=int(b.get("duration", 3)))}

    async def send_document(request: Request) -> Any:
        b = await _body(request)
        file_name = str(b.get("file_name", "file.pdf"))
        return {"message_id": await sim.send_document(int(b["user_id"]), file_name=file_name)}

    async def edit_user_message(request: Request) -> Any:
        b = await _body(request)
        await sim.edit_user_message(int(b["user_id"]), int(b["message_id"]), str(b["new_text"]))
        return True

    async def tap(request: Request) -> Any:
        b = await _body(request)
        tapper = sim.tap_raw if b.get("raw") else sim.tap
        query_id = await tapper(int(b["user_id"]), int(b["message_id"]), str(b["callback_data"]))
        return {"callback_query_id": query_id}

    async def transcript(request: Request) -> Any:
        return [m.to_json() for m in sim.transcript(int(request.path_params["chat_id"]))]

    async def wait_for(request: Request) -> Any:
        b = await _body(request)
        message = await sim.wait_for(
            int(b["chat_id"]),
            str(b["contains"]),
            timeout=float(b.get("timeout", 5.0)),
            after=int(b.get("after", 0)),
        )
        return message.to_json()

    async def callback_answer(request: Request) -> Any:
        timeout = float(request.query_params.get("timeout", "5"))
        return await sim.wait_for_callback_answer(str(request.path_params["query_id"]), timeout=timeout)

    async def inject(request: Request) -> Any:
        b = await _body(request)
        fault = Fault.from_json(dict(b["fault"]))
        chat_id = None if b.get("chat_id") is None else int(b["chat_id"])
        sim.inject(str(b.get("method", "*")), fault, times=int(b.get("times", 1)), chat_id=chat_id)
        return True

    async def clear_faults(request: Request) -> Any:
        sim.clear_faults()
        return True

    async def block_bot(request: Request) -> Any:
        b = await _body(request)
        sim.block_bot(int(b["user_id"]), bool(b.get("blocked", True)))
        return True

    async def calls(request: Request) -> Any:
        since = int(request.query_params.get("since", "0"))
        method = request.query_params.get("method")
        return [c.to_json() for c in sim.calls[since:] if method is None or c.method == method]

    async def sent_count(request: Request) -> Any:
        chat_id = request.query_params.get("chat_id")
        return sim.sent_count(None if chat_id is None else int(chat_id))

    async def health(request: Request) -> Any:
        return {"base_url": sim.base_url, "calls": len(sim.calls)}

    post = ["POST"]
    return [
        Route("/_sim/send_text", _guard(send_text), methods=post),
        Route("/_sim/send_sticker", _guard(send_sticker), methods=post),
        Route("/_sim/send_photo", _guard(send_photo), methods=post),
        Route("/_sim/send_voice", _guard(send_voice), methods=post),
        Route("/_sim/send_document", _guard(send_document), methods=post),
        Route("/_sim/edit_user_message", _guard(edit_user_message), methods=post),
        Route("/_sim/tap", _guard(tap), methods=post),
        Route("/_sim/transcript/{chat_id}", _guard(transcript), methods=["GET"]),
        Route("/_sim/wait_for", _guard(wait_for), methods=post),
        Route("/_sim/callback_answer/{query_id}", _guard(callback_answer), methods=["GET"]),
        Route("/_sim/inject", _guard(inject), methods=post),
        Route("/_sim/clear_faults", _guard(clear_faults), methods=post),
        Route("/_sim/block_bot", _guard(block_bot), methods=post),
        Route("/_sim/calls", _guard(calls), methods=["GET"]),
        Route("/_sim/sent_count", _guard(sent_count), methods=["GET"]),
        Route("/_sim/health", _guard(health), methods=["GET"]),
    ]
