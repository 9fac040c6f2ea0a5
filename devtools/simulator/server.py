"""Starlette app assembly and the uvicorn lifecycle (start on a free port, fast stop).

uvicorn's own ``serve()`` polls for shutdown every 0.1 s and installs signal handlers; embedded in a
test's event loop we want neither, so this drives ``Server.startup()`` directly and shuts down itself:
close the listener, close idle keep-alive connections, let in-flight responses finish (the stand-in
releases long polls first), force-close what is left after a short grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Sequence

import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route

from .gateway import Gateway

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_app(gateway: Gateway, control_routes: Sequence[BaseRoute]) -> Starlette:
    routes: list[BaseRoute] = [
        Route("/bot{token}/{method}", gateway.bot_api, methods=["GET", "POST"]),
        Route("/file/bot{token}/{path:path}", gateway.file_download, methods=["GET"]),
        *control_routes,
        Route("/{path:path}", gateway.not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ]
    return Starlette(routes=routes)


class HttpServer:
    def __init__(self, app: Starlette) -> None:
        self.app = app
        self._server: uvicorn.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.host = ""
        self.port = 0

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self, host: str, port: int) -> None:
        if self._server is not None:
            raise RuntimeError("already started")
        if not is_loopback(host):
            raise ValueError(f"the Telegram stand-in only listens on loopback addresses, not {host!r}")
        config = uvicorn.Config(
            self.app,
            host=host,
            port=port,
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_keep_alive=75,
            backlog=4096,
        )
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        try:
            await server.startup()
        except SystemExit:  # uvicorn exits the process when it can't bind
            raise OSError(f"could not listen on {host}:{port}") from None
        if not server.started or not server.servers:
            raise OSError(f"could not listen on {host}:{port}")
        sockets = server.servers[0].sockets
        self.port = int(sockets[0].getsockname()[1])
        self.host = host
        self._server = server
        await server.on_tick(0)  # sets the Date header
        self._ticker = asyncio.get_running_loop().create_task(
            self._tick(server), name="telegram-standin-http"
        )

    async def _tick(self, server: uvicorn.Server) -> None:
        while True:
            await asyncio.sleep(1.0)
            await server.on_tick(0)

    async def stop(self, grace: float = 0.5) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for listener in server.servers:
            listener.close()
        state = server.server_state
        for connection in list(state.connections):
            connection.shutdown()
        deadline = time.monotonic() + grace
        while state.connections and time.monotonic() < deadline:  # noqa: ASYNC110 (uvicorn has no event)
            await asyncio.sleep(0.002)  # responses being flushed; not test synchronisation
        for connection in list(state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.close()
        tasks = list(state.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for listener in server.servers:
            await listener.wait_closed()
        await asyncio.sleep(0)  # let transports run connection_lost
