"""
One HTTP exchange as plain data: :class:`HttpRequest` in, :class:`HttpResponse` out.

The protocol core (:class:`~tasks_store.mcp.server.McpServer`) maps one
parsed request to one reply, in the style of h11: no WSGI, no sockets, no
framework.  An adapter (:mod:`tasks_store.mcp.wsgi`, or your own for another
server) builds the request, asks the core, and writes the reply.

>>> request = HttpRequest("POST", "/mcp", {"Content-Type": "application/json"}, b"{}", None)
>>> request.header("content-type")
'application/json'
>>> HttpResponse.json(200, {"ok": True}).body
b'{"ok":true}'
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

__all__ = ["REASONS", "HttpRequest", "HttpResponse"]

#: Reason phrases of the statuses this layer answers with.
REASONS: Mapping[int, str] = MappingProxyType(
    {
        200: "OK",
        202: "Accepted",
        204: "No Content",
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        405: "Method Not Allowed",
        406: "Not Acceptable",
        411: "Length Required",
        413: "Content Too Large",
        415: "Unsupported Media Type",
        429: "Too Many Requests",
        500: "Internal Server Error",
    }
)

JSON_MEDIA_TYPE = "application/json"


def _lower_headers(headers: Mapping[str, str]) -> Mapping[str, str]:
    if not isinstance(headers, Mapping):
        msg = f"headers must be a mapping of str to str, got {type(headers).__name__}"
        raise TypeError(msg)
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            msg = f"headers must map str names to str values; got {name!r}: {value!r}"
            raise TypeError(msg)
        lowered[name.lower()] = value
    return MappingProxyType(lowered)


def _check_str(name: str) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, str):
            msg = f"{name} must be a str, got {type(value).__name__}"
            raise TypeError(msg)

    return check


def _check_principal(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, str):
        msg = f"principal must be a str or None, got {type(value).__name__}"
        raise TypeError(msg)


def _check_body(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bytes):
        msg = f"body must be bytes, got {type(value).__name__}"
        raise TypeError(msg)


@attrs.frozen
class HttpRequest:
    """
    One HTTP request, already read, and who is asking.

    Attributes:
        method: the HTTP method, upper case (``"POST"``).
        path: the request path (informational: the core answers on any path).
        headers: header name to value; names are lower-cased when the
            request is built (repeated headers: join them with ``", "``).
        body: the whole body.
        principal: the authenticated user the adapter vouches for
            (``REMOTE_USER``, a bearer token's owner, a framework's login
            user), or None.  It always wins over a session as the owner.
    """

    method: str = attrs.field(validator=_check_str("method"))
    path: str = attrs.field(validator=_check_str("path"))
    headers: Mapping[str, str] = attrs.field(converter=_lower_headers)
    body: bytes = attrs.field(validator=_check_body)
    principal: str | None = attrs.field(default=None, validator=_check_principal)

    def header(self, name: str) -> str | None:
        """Return header *name* (any case), or None when it is absent."""
        return self.headers.get(name.lower())


def _tuple_headers(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    out = tuple((str(name), str(value)) for name, value in headers)
    for name, value in out:
        if not name or any(c in name + value for c in "\r\n"):
            msg = f"invalid header {name!r}: {value!r}"
            raise ValueError(msg)
    return out


@attrs.frozen
class HttpResponse:
    """
    One HTTP reply.

    Attributes:
        status: the status code (``200``).
        headers: ``(name, value)`` pairs, in order; ``Content-Length`` is the
            adapter's to add.
        body: the whole body (empty for 202).
    """

    status: int
    headers: tuple[tuple[str, str], ...] = attrs.field(converter=_tuple_headers, default=())
    body: bytes = b""

    @property
    def reason(self) -> str:
        """The reason phrase of :attr:`status` (``"OK"``)."""
        return REASONS.get(self.status, "Unknown")

    @property
    def status_line(self) -> str:
        """``"<status> <reason>"``, as WSGI's ``start_response`` takes it."""
        return f"{self.status} {self.reason}"

    def header(self, name: str) -> str | None:
        """Return the first header *name* (any case), or None."""
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    @classmethod
    def json(
        cls, status: int, payload: Mapping[str, Any], headers: Iterable[tuple[str, str]] = ()
    ) -> HttpResponse:
        """
        Return a reply whose body is *payload* as compact UTF-8 JSON.

        Raises:
            ValueError, TypeError: *payload* is not JSON (NaN, foreign types).
        """
        body = json.dumps(
            payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode("utf-8")
        return cls(status, (("Content-Type", JSON_MEDIA_TYPE), *headers), body)

    @classmethod
    def empty(cls, status: int, headers: Iterable[tuple[str, str]] = ()) -> HttpResponse:
        """Return a reply with no body (202 for a notification)."""
        return cls(status, tuple(headers), b"")
