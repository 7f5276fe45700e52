"""
Multi round-trip requests (MRTR, SEP-2322) on 2026-07-28, and the input
request shapes both generations share.

A 2026-07-28 ``tools/call`` (or ``prompts/get``) that needs input from the
client is answered with an ``InputRequiredResult``: ``{"resultType":
"input_required", "inputRequests": {key: request}, "requestState": ...}``.
The client retries the same request, as a new and independent one, with
``inputResponses`` (key to the client's result) and the ``requestState`` it
was given.  Any worker can answer the retry: everything one round passes to
the next travels in ``requestState``.

:class:`RequestStateCodec` seals that state.  It is signed with
HMAC-SHA-256 under a key every worker shares (the store's
``shared_secret("mrtr-request-state")``), and binds:

- the method and a digest of its salient parameters (``name`` and
  ``arguments``): a state is refused on any other request;
- the caller (a digest of the owner id): refused for another caller;
- an expiry (:data:`REQUEST_STATE_TTL_S`, 10 minutes by default).

A state that fails any of these is :class:`~tasks_store.errors.InvalidRequestState`
(-32602), never a result.  The state is signed, not encrypted: the client
can read it, so a tool keeps secrets out of what it carries.

:class:`InputRound` is one round as a tool sees it (through
:class:`~tasks_store.mcp.v2026.RequestCallContext`): the answers given so
far (this request's ``inputResponses`` and those the verified state
carries), and the tool's own state.  ``ctx.elicit(...)`` returns the answer
when there is one, and otherwise raises :class:`InputRequired`, which the
server turns into the ``InputRequiredResult``: the tool runs again from the
top on the retry, and its earlier questions then find their answers.  Keys
are the tool's to choose, or numbered in the order the tool asks.

The request builders (:func:`elicitation_request`, :func:`sampling_request`,
:func:`roots_request`) give the ``{"method", "params"}`` objects both an
``InputRequiredResult`` and a task's ``inputRequests`` hold.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import InvalidParams, InvalidRequestState, TaskError

__all__ = [
    "ELICITATION",
    "REQUEST_STATE_SECRET",
    "REQUEST_STATE_TTL_S",
    "ROOTS",
    "SAMPLING",
    "InputRequired",
    "InputRound",
    "RequestStateCodec",
    "elicitation_request",
    "input_responses",
    "roots_request",
    "salient_digest",
    "sampling_request",
]

ELICITATION = "elicitation/create"
SAMPLING = "sampling/createMessage"
ROOTS = "roots/list"

#: The name of the store's shared secret that signs request states.
REQUEST_STATE_SECRET = "mrtr-request-state"
#: How long a request state stays valid, in seconds.
REQUEST_STATE_TTL_S = 600.0

_VERSION = "v1"


# -- request shapes -----------------------------------------------------------


def elicitation_request(message: str, requested_schema: Mapping[str, Any]) -> dict[str, Any]:
    """
    Return a form-mode ``elicitation/create`` input request.

    >>> elicitation_request("Your name?", {"type": "object", "properties": {}})["method"]
    'elicitation/create'

    Raises:
        InvalidParams: *message* is not a str, or *requested_schema* is not
            a mapping with ``"type": "object"``.
    """
    if not isinstance(message, str):
        msg = f"message must be a str, got {type(message).__name__}"
        raise InvalidParams(msg)
    if not isinstance(requested_schema, Mapping) or requested_schema.get("type") != "object":
        msg = 'requested_schema must be a JSON Schema object with "type": "object"'
        raise InvalidParams(msg)
    return {
        "method": ELICITATION,
        "params": {"mode": "form", "message": message, "requestedSchema": dict(requested_schema)},
    }


def sampling_request(
    messages: list[Mapping[str, Any]] | str, max_tokens: int, **params: Any
) -> dict[str, Any]:
    """
    Return a ``sampling/createMessage`` input request.

    *messages* is the ``SamplingMessage`` list, or one str (a single user
    text message).  Further keyword arguments are more ``params``, given in
    the protocol's camelCase (``systemPrompt="..."``, ``temperature=0.2``).

    >>> sampling_request("Capital of France?", 100)["params"]["messages"][0]["role"]
    'user'

    Raises:
        InvalidParams: *max_tokens* is not a positive int, or *messages* is
            neither a str nor a list.
    """
    if isinstance(messages, str):
        messages = [{"role": "user", "content": {"type": "text", "text": messages}}]
    if not isinstance(messages, list):
        msg = f"messages must be a list of SamplingMessage or a str, got {type(messages).__name__}"
        raise InvalidParams(msg)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        msg = f"max_tokens must be a positive int, got {max_tokens!r}"
        raise InvalidParams(msg)
    body: dict[str, Any] = {"messages": [dict(m) for m in messages], "maxTokens": max_tokens}
    body.update(params)
    return {"method": SAMPLING, "params": body}


def roots_request() -> dict[str, Any]:
    """Return a ``roots/list`` input request."""
    return {"method": ROOTS, "params": {}}


def input_responses(params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """
    Return a request's ``inputResponses`` (empty when absent), checked.

    Raises:
        InvalidParams: ``inputResponses`` is present and not an object
            (``null`` too), or one of its answers is not an object.
    """
    if "inputResponses" not in params:
        return {}
    responses = params["inputResponses"]
    if not isinstance(responses, Mapping):
        msg = "Invalid params: inputResponses must be an object (key to the client's result)"
        raise InvalidParams(msg)
    checked: dict[str, dict[str, Any]] = {}
    for key, value in responses.items():
        if not isinstance(value, Mapping):
            shown = key if len(key) <= 60 else key[:57] + "..."
            msg = f"Invalid params: inputResponses[{shown!r}] must be an object"
            raise InvalidParams(msg)
        checked[key] = dict(value)
    return checked


# -- request state ------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def salient_digest(method: str, params: Mapping[str, Any]) -> str:
    """
    Return a digest of what identifies a request: its method, ``name`` and
    ``arguments`` (never ``_meta``, ``inputResponses`` or ``requestState``).
    """
    salient = {"method": method, "name": params.get("name"), "arguments": params.get("arguments")}
    return hashlib.sha256(_canonical(salient)).hexdigest()[:32]


class RequestStateCodec:
    """
    Seal and open ``requestState`` values.

    Args:
        secret: the signing key (at least 16 bytes); the same on every worker.
        ttl_s: how long a state stays valid, in seconds.
        clock: epoch seconds (``time.time``).

    A state is ``v1.<base64url JSON payload>.<base64url HMAC-SHA-256>``.

    >>> codec = RequestStateCodec(b"k" * 32)
    >>> state = codec.seal({"a": 1}, method="tools/call", digest="d", owner="alice")
    >>> codec.open(state, method="tools/call", digest="d", owner="alice")
    {'a': 1}
    """

    def __init__(
        self,
        secret: bytes,
        *,
        ttl_s: float = REQUEST_STATE_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(secret, bytes) or len(secret) < 16:
            msg = "secret must be bytes, at least 16 of them"
            raise ValueError(msg)
        if isinstance(ttl_s, bool) or not isinstance(ttl_s, (int, float)) or not ttl_s > 0:
            msg = f"ttl_s must be a positive number of seconds, got {ttl_s!r}"
            raise ValueError(msg)
        self._secret = secret
        self._ttl_ms = int(ttl_s * 1000)
        self._clock = clock

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()

    @staticmethod
    def _caller(owner: str) -> str:
        return hashlib.sha256(owner.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    def seal(self, payload: Any, *, method: str, digest: str, owner: str) -> str:
        """Return a signed state carrying the JSON value *payload*, bound as the class says."""
        envelope = {
            "m": method,
            "h": digest,
            "o": self._caller(owner),
            "x": int(self._clock() * 1000) + self._ttl_ms,
            "p": payload,
        }
        body = _canonical(envelope)
        return f"{_VERSION}.{_b64(body)}.{_b64(self._mac(body))}"

    def open(self, state: object, *, method: str, digest: str, owner: str) -> Any:
        """
        Return the payload of a state this codec sealed for this request and caller.

        Raises:
            InvalidRequestState: it is not a str, was not signed with this
                key (tampered with), has expired, or was issued for another
                request or another caller.
        """
        if not isinstance(state, str):
            msg = "Invalid params: requestState must be a string"
            raise InvalidRequestState(msg)
        parts = state.split(".")
        try:
            if len(parts) != 3 or parts[0] != _VERSION:
                raise ValueError
            body, mac = _unb64(parts[1]), _unb64(parts[2])
        except (ValueError, binascii.Error):
            msg = "Invalid params: requestState failed verification (malformed)"
            raise InvalidRequestState(msg) from None
        if not hmac.compare_digest(mac, self._mac(body)):
            msg = "Invalid params: requestState failed verification (tampered with or not ours)"
            raise InvalidRequestState(msg)
        envelope = json.loads(body)
        if int(self._clock() * 1000) >= envelope["x"]:
            msg = "Invalid params: requestState has expired: send the request again without it"
            raise InvalidRequestState(msg)
        if envelope["m"] != method or envelope["h"] != digest:
            msg = "Invalid params: requestState was issued for another request"
            raise InvalidRequestState(msg)
        if envelope["o"] != self._caller(owner):
            msg = "Invalid params: requestState was issued to another caller"
            raise InvalidRequestState(msg)
        return envelope["p"]


# -- one round ----------------------------------------------------------------


class InputRequired(TaskError):
    """
    Raised inside a tool by ``ctx.elicit(...)`` (and the other input
    methods) on 2026-07-28 when the answer is not there yet: the server
    answers the request with an ``InputRequiredResult`` asking for
    :attr:`requests` (key to request).  A tool lets it propagate.
    """

    def __init__(self, requests: Mapping[str, Mapping[str, Any]]) -> None:
        super().__init__(f"input required: {', '.join(map(repr, requests))}")
        self.requests = dict(requests)


class InputRound:
    """
    One round of a multi round-trip request, as the tool sees it.

    Args:
        responses: this request's ``inputResponses`` (checked).
        answers: the answers an earlier round's state carries.
        tool_state: the tool's own state, from an earlier round (None at first).
        number: the round, from 1.
    """

    def __init__(
        self,
        responses: Mapping[str, Mapping[str, Any]] | None = None,
        answers: Mapping[str, Any] | None = None,
        tool_state: Any = None,
        number: int = 1,
    ) -> None:
        self._responses = dict(responses or {})
        self._answers = dict(answers or {})
        self._used: dict[str, Any] = {}
        self._counter = 0
        self.tool_state = tool_state
        self.number = number

    @classmethod
    def from_state(
        cls, responses: Mapping[str, Mapping[str, Any]], payload: Any
    ) -> InputRound:
        """Return the round a verified state's *payload* continues."""
        if not isinstance(payload, Mapping):
            return cls(responses)
        answers = payload.get("a")
        number = payload.get("r")
        return cls(
            responses,
            answers if isinstance(answers, Mapping) else None,
            payload.get("s"),
            number + 1 if isinstance(number, int) else 1,
        )

    def next_key(self, prefix: str) -> str:
        """Return ``"<prefix>-<n>"``, n counting the tool's questions in order (deterministic)."""
        self._counter += 1
        return f"{prefix}-{self._counter}"

    def response(self, key: str) -> Any:
        """Return the answer to *key* (an earlier round's first), or None."""
        if key in self._answers:
            return self._answers[key]
        return self._responses.get(key)

    def ask(self, requests: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        """
        Return the answers to every request of *requests* (key to request).

        Raises:
            InputRequired: some are not answered yet; it names those.
        """
        missing = {key: dict(request) for key, request in requests.items()
                   if self.response(key) is None}  # fmt: skip
        if missing:
            raise InputRequired(missing)
        answered = {key: self.response(key) for key in requests}
        self._used.update(answered)
        return answered

    def carried(self) -> dict[str, Any]:
        """What the next round's state carries: every answer known so far and the tool's state."""
        answers = {**self._answers, **self._used}
        return {"a": answers, "s": self.tool_state, "r": self.number}
