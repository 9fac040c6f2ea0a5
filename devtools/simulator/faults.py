"""Fault injection: make the next N calls of a method fail (or stall) the way Telegram sometimes does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .errors import BOT_BLOCKED, ApiError, forbidden, too_many_requests

FaultKind = Literal["too_many_requests", "blocked", "server_error", "slow"]

_STATUS_PHRASES = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    retry_after: int = 0
    status: int = 502
    seconds: float = 0.0

    @classmethod
    def too_many_requests(cls, retry_after: int) -> Fault:
        """429 with ``parameters.retry_after`` (python-telegram-bot raises ``RetryAfter``)."""
        return cls("too_many_requests", retry_after=retry_after)

    @classmethod
    def blocked(cls) -> Fault:
        """403 "Forbidden: bot was blocked by the user" (python-telegram-bot raises ``Forbidden``)."""
        return cls("blocked")

    @classmethod
    def server_error(cls, status: int = 502) -> Fault:
        """A 5xx: 500 is Telegram's JSON error, other codes are the nginx HTML page of a bad gateway."""
        if not 500 <= status <= 599:
            raise ValueError("server_error status must be 5xx")
        return cls("server_error", status=status)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Wait ``seconds``, then handle the call normally (it takes effect even if the client gave up)."""
        return cls("slow", seconds=seconds)

    def error(self) -> ApiError | None:
        if self.kind == "too_many_requests":
            return too_many_requests(self.retry_after)
        if self.kind == "blocked":
            return forbidden(BOT_BLOCKED)
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "retry_after": self.retry_after,
            "status": self.status,
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        kind = data.get("kind")
        if kind == "too_many_requests":
            return cls.too_many_requests(int(data.get("retry_after", 1)))
        if kind == "blocked":
            return cls.blocked()
        if kind == "server_error":
            return cls.server_error(int(data.get("status", 502)))
        if kind == "slow":
            return cls.slow(float(data.get("seconds", 1.0)))
        raise ValueError(f"unknown fault kind {kind!r}")


def server_error_body(status: int) -> tuple[bytes, str]:
    """(body, content type) of a 5xx like Telegram's front end returns it."""
    phrase = _STATUS_PHRASES.get(status, "Server Error")
    if status == 500:
        body = f'{{"ok":false,"error_code":500,"description":"{phrase}"}}'
        return body.encode(), "application/json"
    html = (
        f"<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
        "</body>\r\n</html>\r\n"
    )
    return html.encode(), "text/html"


@dataclass
class _Injection:
    method: str
    fault: Fault
    remaining: int
    chat_id: int | None


class FaultBook:
    """Pending injections, consumed in the order they were added."""

    def __init__(self) -> None:
        self._entries: list[_Injection] = []

    def add(self, method: str, fault: Fault, times: int, chat_id: int | None) -> None:
        if times < 1:
            raise ValueError("times must be >= 1")
        self._entries.append(_Injection(method.lower(), fault, times, chat_id))

    def clear(self) -> None:
        self._entries.clear()

    def take(self, method: str, chat_id: int | None) -> Fault | None:
        name = method.lower()
        for entry in self._entries:
            if entry.method not in ("*", name):
                continue
            if entry.chat_id is not None and entry.chat_id != chat_id:
                continue
            entry.remaining -= 1
            if entry.remaining <= 0:
                self._entries.remove(entry)
            return entry.fault
        return None

    def pending(self) -> list[dict[str, Any]]:
        return [
            {"method": e.method, "fault": e.fault.to_json(), "remaining": e.remaining, "chat_id": e.chat_id}
            for e in self._entries
        ]
