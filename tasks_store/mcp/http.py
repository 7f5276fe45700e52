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

A reply may also be a stream (:meth:`HttpResponse.sse`: Server-Sent Events,
``text/event-stream``): its :attr:`~HttpResponse.stream` yields the body in
chunks, each as soon as it exists, and the adapter writes them as they come
(no ``Content-Length``).  The adapter closes the stream (``close()``) when the
client goes away or the body ends; a stream checks
:attr:`HttpRequest.client_gone` now and then while it waits.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

import attrs

__all__ = [
    "EVENT_STREAM_MEDIA_TYPE",
    "JSON_MEDIA_TYPE",
    "REASONS",
    "SSE_COMMENT",
    "HttpRequest",
    "HttpResponse",
    "accepts_media",
    "sse_event",
]

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
EVENT_STREAM_MEDIA_TYPE = "text/event-stream"

#: An SSE comment: a keep-alive a client ignores (it also reveals a gone client).
SSE_COMMENT = b": keep-alive\n\n"


def sse_event(message: Mapping[str, Any]) -> bytes:
    """
    Return one SSE event (``event: message``) carrying *message* as compact JSON.

    >>> sse_event({"jsonrpc": "2.0", "method": "x"})
    b'event: message\\ndata: {"jsonrpc":"2.0","method":"x"}\\n\\n'

    Raises:
        ValueError, TypeError: *message* is not JSON.
    """
    data = json.dumps(message, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return b"event: message\ndata: " + data.encode("utf-8") + b"\n\n"


def accepts_media(accept: str | None, media_type: str) -> bool:
    """
    Return whether an ``Accept`` header value allows *media_type* (q > 0).

    An absent header allows anything.

    >>> accepts_media("application/json, text/event-stream", "text/event-stream")
    True
    >>> accepts_media("application/json", "text/event-stream"), accepts_media(None, "x/y")
    (False, True)
    """
    if accept is None:
        return True
    wanted = media_type.lower()
    family = wanted.split("/")[0] + "/*"
    for part in accept.split(","):
        pieces = [p.strip() for p in part.split(";")]
        media = pieces[0].lower()
        if media not in (wanted, family, "*/*"):
            continue
        q = 1.0
        for param in pieces[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0:
            return True
    return False


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
        client_gone: ``fn() -> bool``, True once the client has gone away
            (waitress's ``waitress.client_disconnected``), or None when the
            adapter cannot tell; a streamed reply checks it while it waits.
    """

    method: str = attrs.field(validator=_check_str("method"))
    path: str = attrs.field(validator=_check_str("path"))
    headers: Mapping[str, str] = attrs.field(converter=_lower_headers)
    body: bytes = attrs.field(validator=_check_body)
    principal: str | None = attrs.field(default=None, validator=_check_principal)
    client_gone: Callable[[], bool] | None = attrs.field(
        default=None, eq=False, repr=False, kw_only=True
    )

    def gone(self) -> bool:
        """Return whether the client is known to have gone away (never raises)."""
        check = self.client_gone
        if check is None:
            return False
        try:
            return bool(check())
        except Exception:  # an adapter's probe failing says nothing either way
            return False

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
            adapter's to add (never for a stream).
        body: the whole body (empty for 202, and for a stream).
        stream: None, or the body as chunks yielded as they come (an SSE
            stream, see :meth:`sse`); the adapter writes each at once and
            calls its ``close()`` if it has one when done or when the client
            goes away.
    """

    status: int
    headers: tuple[tuple[str, str], ...] = attrs.field(converter=_tuple_headers, default=())
    body: bytes = b""
    stream: Iterable[bytes] | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def streamed(self) -> bool:
        """Whether the body is a stream (:attr:`stream`)."""
        return self.stream is not None

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

    @classmethod
    def sse(
        cls, events: Iterator[bytes], headers: Iterable[tuple[str, str]] = ()
    ) -> HttpResponse:
        """
        Return a 200 reply whose body is the SSE stream *events* (``text/event-stream``).

        Each item of *events* is one or more whole events (:func:`sse_event`,
        :data:`SSE_COMMENT`).
        """
        fixed = (
            ("Content-Type", EVENT_STREAM_MEDIA_TYPE),
            ("Cache-Control", "no-cache, no-transform"),
            ("X-Accel-Buffering", "no"),
        )
        return cls(200, (*fixed, *headers), b"", events)
