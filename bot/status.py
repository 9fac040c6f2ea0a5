"""`/healthz`, `/readyz` and `/metrics`: what a container's health check, a load balancer and Prometheus
read.

- `/healthz`: 200 from the bot's own event loop; a process that is gone or stuck does not answer. It reads
  nothing.
- `/readyz`: the database answers and is at the newest migration (503 otherwise). One query.
- `/metrics`: Prometheus's text (counts and ages, never a person); with METRICS_TOKEN set, only for a request
  that carries `Authorization: Bearer <METRICS_TOKEN>` (401 otherwise). A few count queries.

Where: with STATUS_PORT unset (the default) they are served beside the webhook on
WEBHOOK_LISTEN:WEBHOOK_PORT, in webhook mode only, as they always were (long polling opens no port). With
STATUS_PORT set they are served on STATUS_LISTEN:STATUS_PORT in both modes, and the webhook's port serves the
webhook alone: the container sets it, so its HEALTHCHECK (`python -m bot health`) has a /healthz to read
whichever mode runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import socket
from collections.abc import Generator
from typing import TYPE_CHECKING

import uvicorn
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.core.db import SchemaNotCurrent, ensure_current
from bot.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from bot.runtime import Runtime

log = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 5
STOP_GRACE_SECONDS = 20  # on SIGTERM, how long requests under way (webhook updates) may take to finish


class ListenError(Exception):
    """A server could not start (the port is taken, say); the message is safe to print."""


def local_address(listen: str) -> str:
    """Where a process on this machine reaches a server that listens on `listen`."""
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(listen, listen)  # noqa: S104


class StatusEndpoints:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        token = runtime.settings.metrics_token
        self._token = token.get_secret_value().encode() if token is not None else None

    def routes(self) -> list[Route]:
        return [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
        ]

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        try:
            async with asyncio.timeout(READY_TIMEOUT_SECONDS):
                async with self.runtime.engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
                await ensure_current(self.runtime.engine)
        except SchemaNotCurrent:
            return JSONResponse({"status": "database not migrated"}, status_code=503)
        except Exception:  # unreachable, timed out, refused: not ready either way
            log.warning("event=readyz.database_unavailable")
            return JSONResponse({"status": "database unavailable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    def _authorized(self, request: Request) -> bool:
        if self._token is None:
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self._token)

    async def metrics(self, request: Request) -> Response:
        if not self._authorized(request):
            log.warning("event=metrics.refused")
            return Response(status_code=401, headers={"www-authenticate": 'Bearer realm="metrics"'})
        try:
            async with self.runtime.sessions() as session:
                await self.runtime.metrics.read_database(session)
        except Exception:  # the process's own counters are still worth serving
            log.warning("event=metrics.database_unavailable")
        return Response(self.runtime.metrics.exposition(), media_type=CONTENT_TYPE)


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handlers: `python -m bot run` owns SIGTERM and stops us in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class LocalServer:
    """An ASGI app served by uvicorn in this process's event loop, on a port taken before anything starts."""

    def __init__(self, host: str, port: int, *, name: str) -> None:
        self.host, self.wanted_port, self.name = host, port, name
        self._socket: socket.socket | None = None
        self._server: _Uvicorn | None = None
        self._task: asyncio.Task[None] | None = None

    def listen(self) -> None:
        """Take the port first, so a taken one stops start-up before anything else happens."""
        try:
            self._socket = socket.create_server((self.host, self.wanted_port))
        except OSError as error:
            raise ListenError(f"cannot listen on {self.host}:{self.wanted_port}: {error.strerror}") from None

    @property
    def port(self) -> int:
        assert self._socket is not None
        return int(self._socket.getsockname()[1])

    async def start(self, app: ASGIApp) -> None:
        if self._socket is None:
            self.listen()
        sock = self._socket
        assert sock is not None
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=STOP_GRACE_SECONDS,
        )
        self._server = _Uvicorn(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name=f"{self.name}-server")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # uvicorn's own error
                raise ListenError(f"the {self.name} server stopped at start-up")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Take no new requests; let those under way finish."""
        if self._server is None or self._task is None:
            if self._socket is not None:
                self._socket.close()
            return
        self._server.should_exit = True
        await self._task


class StatusServer:
    """The status endpoints on their own port (STATUS_LISTEN:STATUS_PORT)."""

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        assert settings.status_port is not None
        self.endpoints = StatusEndpoints(runtime)
        self.server = LocalServer(settings.status_listen, settings.status_port, name="status")

    def listen(self) -> None:
        self.server.listen()

    async def start(self) -> None:
        await self.server.start(Starlette(routes=self.endpoints.routes()))
        log.info("event=status.listening port=%d", self.server.port)

    async def stop(self) -> None:
        await self.server.stop()
