"""
Validate 2026-07-28 JSON-RPC responses against the vendored schemas (tests/data):
the core ``mcp-schema-2026-07-28.json`` and the Tasks extension's
``ext-tasks-schema.json``.

``check_response_2026(response, method)`` validates, as the conformance
suite's ``wire-schema-valid`` does and then some:

* an error: against the core definition of its code (``HeaderMismatchError``
  -32020, ``MissingRequiredClientCapabilityError`` -32021,
  ``UnsupportedProtocolVersionError`` -32022), else ``JSONRPCErrorResponse``;
* a result: the envelope ``JSONRPCResultResponse`` (``resultType`` required),
  then the result against the definition *method* answers with:
  ``InputRequiredResult`` when ``resultType`` is ``"input_required"``, the
  extension's ``CreateTaskResult`` when it is ``"task"`` (only ``tools/call``
  may answer one), the extension's ``GetTaskResult``/``UpdateTaskResult``/
  ``CancelTaskResult`` for ``tasks/*``, else the core ``<Name>Result`` of the
  method's ``<Name>Request`` (``DiscoverResult``, ``ListToolsResult``,
  ``CallToolResult`` ...).

Validators are built once, under a lock; validating does not mutate them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from functools import cache
from typing import Any

import jsonschema

from .mcp_schema import EXT_TASKS_SCHEMA_PATH, SCHEMA_2026_PATH

__all__ = [
    "EXT_RESULTS",
    "check_error_2026",
    "check_response_2026",
    "core_result_def",
    "core_validator",
    "ext_validator",
]

#: The extension's methods and the ``$defs`` their results must match.
EXT_RESULTS: Mapping[str, str] = {
    "tasks/get": "GetTaskResult",
    "tasks/update": "UpdateTaskResult",
    "tasks/cancel": "CancelTaskResult",
}

_lock = threading.Lock()
_validators: dict[tuple[str, str], Any] = {}


@cache
def _defs(which: str) -> dict[str, Any]:
    path = SCHEMA_2026_PATH if which == "core" else EXT_TASKS_SCHEMA_PATH
    schema = json.loads(path.read_text(encoding="utf-8"))
    return schema["$defs"]  # type: ignore[no-any-return]


def _validator(which: str, name: str) -> Any:
    with _lock:
        found = _validators.get((which, name))
        if found is None:
            defs = _defs(which)
            assert name in defs, f"$defs.{name} missing from the {which} schema"
            found = jsonschema.Draft202012Validator({"$ref": f"#/$defs/{name}", "$defs": defs})
            _validators[(which, name)] = found
    return found


def core_validator(name: str) -> Any:
    """A Draft 2020-12 validator for ``$defs[name]`` of the 2026-07-28 schema."""
    return _validator("core", name)


def ext_validator(name: str) -> Any:
    """A Draft 2020-12 validator for ``$defs[name]`` of the Tasks extension's schema."""
    return _validator("ext", name)


@cache
def _method_results() -> dict[str, str]:
    """Each core request method to its result definition (``FooRequest`` -> ``FooResult``)."""
    defs = _defs("core")
    found: dict[str, str] = {}
    for name, definition in defs.items():
        method = definition.get("properties", {}).get("method", {}).get("const")
        if isinstance(method, str) and name.endswith("Request"):
            result = name[: -len("Request")] + "Result"
            if result in defs:
                found[method] = result
    return found


@cache
def _error_defs() -> dict[int, str]:
    """Each error code the core schema gives a definition of, to that definition."""
    found: dict[int, str] = {}
    for name, definition in _defs("core").items():
        error = definition.get("properties", {}).get("error", {})
        for part in error.get("allOf", []):
            code = part.get("properties", {}).get("code", {}).get("const")
            if isinstance(code, int):
                found[code] = name
    return found


def core_result_def(method: str) -> str | None:
    """The core result definition of *method* (``"tools/call"`` -> ``"CallToolResult"``)."""
    return _method_results().get(method)


def check_error_2026(response: Mapping[str, Any]) -> None:
    """Assert *response* is a valid 2026-07-28 error response (its code's own definition)."""
    assert "result" not in response, response
    code = response.get("error", {}).get("code")
    name = _error_defs().get(code, "JSONRPCErrorResponse") if isinstance(code, int) else None
    core_validator(name or "JSONRPCErrorResponse").validate(response)
    core_validator("JSONRPCErrorResponse").validate(response)


def check_response_2026(response: Any, method: str | None = None) -> None:
    """
    Assert *response* is a valid 2026-07-28 response to a *method* request.

    Raises:
        AssertionError, jsonschema.ValidationError: it is not.
    """
    assert isinstance(response, dict), response
    if "error" in response:
        check_error_2026(response)
        return
    core_validator("JSONRPCResultResponse").validate(response)
    result = response["result"]
    kind = result.get("resultType")
    if kind == "input_required":
        core_validator("InputRequiredResult").validate(result)
        assert "inputRequests" in result or "requestState" in result, result
        return
    if kind == "task":
        assert method == "tools/call", f"{method} answered a CreateTaskResult"
        ext_validator("CreateTaskResult").validate(result)
        for key in ("task", "ttl", "pollInterval", "result", "error", "inputRequests"):
            assert key not in result, f"CreateTaskResult carries {key!r}: {result}"
        assert "requestState" not in result, result
        return
    assert kind == "complete", f"unexpected resultType {kind!r}"
    if method in EXT_RESULTS:
        ext_validator(EXT_RESULTS[method]).validate(result)
        assert "requestState" not in result, result
        return
    name = core_result_def(method) if method is not None else None
    if name is not None:
        core_validator(name).validate(result)
