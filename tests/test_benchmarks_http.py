"""
The HTTP benchmark section cannot rot: ``--quick --sections http`` runs end to
end, and every server it names gets its rows (figures, or "unavailable" with
the reason).

No timing is asserted.  The quick run starts servers and installs the peers
into the benchmark's cache on first use, so it carries the ``bench_smoke``
marker (``.ci/run`` runs it as a step of its own); the parser and
unavailable-row tests are quick and run in the default suite.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
from pathlib import Path

import pytest

from benchmarks import http, http_report, main
from benchmarks.http_servers import ServerSpec, ServerUnavailable
from benchmarks.loadgen import _Conn, _json_body


@pytest.fixture(scope="module")
def quick_http(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Run ``python -m benchmarks --quick --sections http`` once; return (out dir, stdout)."""
    out = tmp_path_factory.mktemp("bench-http")
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(http.INSTALL_ENV, "1")  # install the peers on first use (minutes)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            status = main(["--quick", "--sections", "http", "--out", str(out)])
    assert status == 0
    assert "http ·" in stderr.getvalue()  # the progress bar went to stderr
    return out, stdout.getvalue()


@pytest.mark.bench_smoke
@pytest.mark.timeout(1500)
def test_quick_http_writes_files(quick_http: tuple[Path, str]) -> None:
    """results.json, results.md and, with matplotlib, http.png are written."""
    out, _ = quick_http
    expected = {"results.json", "results.md"}
    if importlib.util.find_spec("matplotlib") is not None:
        expected.add("http.png")
    assert expected <= {p.name for p in out.iterdir()}
    for name in expected:
        assert (out / name).stat().st_size > 0


@pytest.mark.bench_smoke
@pytest.mark.timeout(1500)
def test_quick_http_has_a_row_per_server(quick_http: tuple[Path, str]) -> None:
    """Every server of the quick run has its config; each available one every row."""
    out, _ = quick_http
    section = json.loads((out / "results.json").read_text(encoding="utf-8"))["http"]
    settings = section["settings"]
    names = [spec.name for spec in http.specs(quick=True)]
    assert [c["name"] for c in section["configs"]] == names
    assert any(c["kind"] == "peer" for c in section["configs"])
    assert any(c["kind"] == "floor" for c in section["configs"])
    for config in section["configs"]:
        name = config["name"]
        if "unavailable" in config:
            assert config["unavailable"]  # a reason
            continue
        workloads = ["get"] if config["kind"] == "floor" else ["get", "create", "mixed"]
        got = {(r["workload"], r["clients"]) for r in section["rows"] if r["config"] == name}
        assert got == {(w, c) for w in workloads for c in settings["clients"]}
        if config["kind"] == "floor":
            continue
        modes = {(r["mode"], r["clients"]) for r in section["latency"] if r["config"] == name}
        assert modes == {(m, c) for m in ("poll", "block") for c in settings["latency_clients"]}
        assert [m for m in section["memory"] if m["config"] == name]
    ours = [c for c in section["configs"] if c["kind"] == "ours" and "unavailable" not in c]
    assert ours, "this project's server must run in the quick mode"
    for row in section["rows"]:
        if row["config"] == ours[0]["name"]:
            assert "unavailable" not in row, row
            assert row["rps"]["median"] is not None
    assert [t["target"] for t in section["targets"]]
    assert section["load"]["before"]


@pytest.mark.bench_smoke
@pytest.mark.timeout(1500)
def test_quick_http_tables_printed_and_in_markdown(quick_http: tuple[Path, str]) -> None:
    """Each HTTP table, with a line per server, is printed and in results.md."""
    out, stdout = quick_http
    markdown = (out / "results.md").read_text(encoding="utf-8")
    for title in ("HTTP 1. tasks/get", "HTTP 2. tools/call", "HTTP 3. Mixed", "HTTP 4. Create",
                  "HTTP 5. Memory", "HTTP targets"):
        assert title in stdout
        assert f"## {title}" in markdown
    for spec in http.specs(quick=True):
        assert f"| {spec.name} |" in markdown


def _broken() -> dict[str, str]:
    raise ServerUnavailable("cannot be installed here")


def test_unavailable_server_gets_rows_with_the_reason() -> None:
    """A server whose install fails is reported unavailable, and the run goes on."""
    spec = ServerSpec(
        name="Broken peer", kind="peer", server="none", processes=1, store="-", wire="2025",
        about="a peer that cannot be installed", command=lambda port, env: ["false"],
        prepare=_broken,
    )
    seen: list[str] = []
    section = http.run_servers([spec], http.QUICK, seen.append)
    assert section["configs"][0]["unavailable"] == "cannot be installed here"
    assert section["rows"] == []
    assert seen[-1] == "http · done"
    text = "\n".join(t.text() for t in http_report.build_tables({"http": section}))
    assert "unavailable" in text
    assert "cannot be installed here" in text


@pytest.mark.parametrize(
    ("raw", "body"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", b"{}"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n1\r\n}\r\n0\r\n\r\n",
         b"{}"),
        (b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", b""),
    ],
)
def test_loadgen_parses_each_framing(raw: bytes, body: bytes) -> None:
    """Content-Length and chunked bodies, whole or byte by byte."""
    whole = _Conn()
    whole.buf += raw
    status, headers, got = whole._parse(final=False) or (None, {}, None)
    assert status == int(raw.split()[1])
    assert got == body
    assert set(headers.items()) <= set(whole_headers(raw).items())
    split = _Conn()
    parsed = None
    for i in range(len(raw)):
        split.buf += raw[i : i + 1]
        parsed = split._parse(final=False) if parsed is None else parsed
    assert parsed is not None
    assert parsed[2] == body


def whole_headers(raw: bytes) -> dict[str, str]:
    head = raw.split(b"\r\n\r\n")[0].decode().split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head)}


def test_loadgen_reads_json_and_sse_bodies() -> None:
    """A JSON body, or the JSON-RPC response in an SSE stream."""
    assert _json_body(200, {"content-type": "application/json"}, b'{"result":1}') == {"result": 1}
    sse = b'event: message\ndata: {"method":"notifications/x"}\n\ndata: {"id":1,"result":2}\n\n'
    assert _json_body(200, {"content-type": "text/event-stream"}, sse) == {"id": 1, "result": 2}
