"""
Validate JSON-RPC responses against the MCP 2025-11-25 schema (vendored in tests/data).

``check_response(response, result_def)`` validates the envelope
(``JSONRPCResultResponse`` or ``JSONRPCErrorResponse``) and, for a result,
the result against ``$defs[result_def]``.  Thread-safe (validators are built
once, under a lock, and jsonschema validation does not mutate them).
"""

from __future__ import annotations

import json
import threading
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

#: Verbatim copies of the specification's schemas; see tests/data/README.md.
DATA_DIR = Path(__file__).parent / "data"
SCHEMA_PATH = DATA_DIR / "mcp-schema-2025-11-25.json"
SCHEMA_2026_PATH = DATA_DIR / "mcp-schema-2026-07-28.json"
EXT_TASKS_SCHEMA_PATH = DATA_DIR / "ext-tasks-schema.json"
EXAMPLES_DIR = DATA_DIR / "examples-2025-11-25"

_lock = threading.Lock()


@cache
def _defs() -> dict[str, Any]:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema["$defs"]  # type: ignore[no-any-return]


_validators: dict[str, Any] = {}


def validator(name: str) -> Any:
    """Return a Draft 2020-12 validator for ``$defs[name]``."""
    with _lock:
        found = _validators.get(name)
        if found is None:
            defs = _defs()
            assert name in defs, f"$defs.{name} missing from {SCHEMA_PATH}"
            found = jsonschema.Draft202012Validator({"$ref": f"#/$defs/{name}", "$defs": defs})
            _validators[name] = found
    return found


def check_response(response: Any, result_def: str | None = None) -> None:
    """
    Assert *response* is a valid JSON-RPC response under the MCP schema.

    Args:
        response: the decoded response.
        result_def: for a success, the ``$defs`` name its result must match.
    """
    assert isinstance(response, dict), response
    if "error" in response:
        validator("JSONRPCErrorResponse").validate(response)
        assert "result" not in response
    else:
        validator("JSONRPCResultResponse").validate(response)
        if result_def is not None:
            validator(result_def).validate(response["result"])
