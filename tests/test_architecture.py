"""The architecture, checked (issue 9): no import cycles, pure packages without I/O libraries, the
server apart from the demo, size limits, and no library adjusted at import time.

The import-linter contracts in pyproject.toml (``lint-imports``) state the layers; this file checks
what they do not: no cycle between any two modules, nor between the subpackages of any package
(grimp counts imports inside functions too), and the module and function sizes of DESIGN.md.
"""

from __future__ import annotations

import ast
import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import grimp
import pytest

from smart_imaging.versions import release_series, written_for

SRC = Path(__file__).resolve().parents[1] / "src"
PURE = ["access", "binding", "config", "dicom", "fhir", "wado"]
IO_LIBRARIES = ["aiohttp", "httpx", "pynetdicom", "redis", "socket", "sqlite3", "starlette", "uvicorn"]
MODULE_LINES = 400  # a module has fewer lines than this
FUNCTION_LINES = 40  # a function spans (def line to last line) at most this many lines


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("smart_imaging", "smart_imaging_demo", cache_dir=None)


@pytest.fixture(scope="module")
def graph_with_libraries() -> grimp.ImportGraph:
    return grimp.build_graph(
        "smart_imaging", "smart_imaging_demo", include_external_packages=True, cache_dir=None
    )


def cycles(nodes: Iterable[str], successors: Callable[[str], Iterable[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(successors(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = _pop_component(stack, on_stack, node)
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(successors(child)))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def _pop_component(stack: list[str], on_stack: set[str], root: str) -> list[str]:
    component = []
    while True:
        member = stack.pop()
        on_stack.discard(member)
        component.append(member)
        if member == root:
            return component


def test_cycle_finder_finds_cycles() -> None:
    edges = {"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": [], "e": ["e2"], "e2": ["e"]}
    assert cycles(edges, lambda n: edges[n]) == [["a", "b", "c"], ["e", "e2"]]
    assert cycles({"a": ["b"], "b": []}, lambda n: {"a": ["b"], "b": []}[n]) == []


def test_no_import_cycle_between_modules(graph: grimp.ImportGraph) -> None:
    found = cycles(graph.modules, graph.find_modules_directly_imported_by)
    assert found == [], f"modules importing each other (directly or in a loop): {found}"


def _child_of(package: str, module: str) -> str | None:
    """The direct child of ``package`` that ``module`` is or lies in (None: outside, or the package)."""
    if not module.startswith(package + "."):
        return None
    return package + "." + module[len(package) + 1 :].split(".")[0]


def test_no_import_cycle_between_subpackages(graph: grimp.ImportGraph) -> None:
    """At every level: among the children of each package (its modules and subpackages, each with
    everything below it), no two import each other, directly or in a loop."""
    found = []
    packages = {m for m in graph.modules if graph.find_children(m)}
    for package in sorted(packages):
        edges: dict[str, set[str]] = {child: set() for child in graph.find_children(package)}
        for module in graph.find_descendants(package):
            source = _child_of(package, module)
            for imported in graph.find_modules_directly_imported_by(module):
                target = _child_of(package, imported)
                if source and target and source != target:
                    edges[source].add(target)
        found += cycles(edges, lambda child, e=edges: e[child])  # type: ignore[misc]
    assert found == [], f"subpackages importing each other (directly or in a loop): {found}"


def test_subpackage_cycles_are_seen_through_modules() -> None:
    """A cycle between two packages that no two modules form is still found at package level."""
    graph = grimp.ImportGraph()
    for module in ["p", "p.a", "p.a.x", "p.b", "p.b.y"]:
        graph.add_module(module)
    graph.add_import(importer="p.a.x", imported="p.b.y")
    graph.add_import(importer="p.b", imported="p.a")
    assert cycles(graph.modules, graph.find_modules_directly_imported_by) == []
    edges = {"p.a": {"p.b"}, "p.b": {"p.a"}}
    for module in graph.find_descendants("p"):
        assert _child_of("p", module) in edges
    assert cycles(edges, lambda child: edges[child]) == [["p.a", "p.b"]]


@pytest.mark.parametrize("package", PURE)
def test_pure_packages_import_no_io_library(graph_with_libraries: grimp.ImportGraph, package: str) -> None:
    graph = graph_with_libraries
    name = f"smart_imaging.{package}"
    assert name in graph.modules
    chains = {
        library: graph.find_shortest_chain(importer=name, imported=library, as_packages=True)
        for library in IO_LIBRARIES
        if library in graph.modules
    }
    assert "httpx" in chains  # the check sees the libraries the server does import
    found = {library: chain for library, chain in chains.items() if chain}
    assert found == {}, f"{name} reaches an I/O library: {found}"


def test_server_never_imports_the_demo(graph: grimp.ImportGraph) -> None:
    chain = graph.find_shortest_chain(
        importer="smart_imaging", imported="smart_imaging_demo", as_packages=True
    )
    assert chain is None, f"the server imports the demo: {chain}"
    assert graph.chain_exists(importer="smart_imaging_demo", imported="smart_imaging", as_packages=True)


def _sources() -> list[Path]:
    files = sorted(SRC.rglob("*.py"))
    assert any(path.name == "app.py" for path in files)
    return files


def test_modules_are_under_400_lines() -> None:
    long = {}
    for path in _sources():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines >= MODULE_LINES:
            long[str(path.relative_to(SRC))] = lines
    assert long == {}, f"modules of {MODULE_LINES} lines or more (split them by job): {long}"


def function_spans(source: str) -> dict[str, int]:
    """Every function and method (nested ones too): ``name@line`` -> lines from ``def`` to its end."""
    spans = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert node.end_lineno is not None
            spans[f"{node.name}@{node.lineno}"] = node.end_lineno - node.lineno + 1
    return spans


def test_function_spans_are_measured() -> None:
    source = (
        "def f():\n    x = 1\n\n    return x\n\n\nclass C:\n    async def g(self):\n        def h(): pass\n"
    )
    assert function_spans(source) == {"f@1": 4, "g@8": 2, "h@9": 1}


def test_functions_span_at_most_40_lines() -> None:
    long = {}
    for path in _sources():
        for name, lines in function_spans(path.read_text(encoding="utf-8")).items():
            if lines > FUNCTION_LINES:
                long[f"{path.relative_to(SRC)}:{name}"] = lines
    assert long == {}, f"functions longer than {FUNCTION_LINES} lines (split them): {long}"


# -------------------------------------------- library adjustments: explicit, version-checked

_PROBE = """
import json, sys
import httpcore._async.http11 as h11
from pynetdicom import _config
import smart_imaging.app, smart_imaging.cli, smart_imaging.http_client, smart_imaging_demo.app
from smart_imaging.sources.dimse import scu
from smart_imaging import http_client, versions
state = lambda: [h11.AsyncHTTP11Connection.READ_NUM_BYTES, _config.STORE_RECV_CHUNKED_DATASET]
out = {"imported": state()}
if sys.argv[1] == "other-release":
    versions.metadata.version = lambda name: "99.0.0"
http_client.create_client(5.0, "aiohttp")
out["aiohttp client"] = state()
http_client.create_client(5.0, "httpx")  # as at start-up: the app's client on the httpx backend
out["httpx client"] = state()
out["applied"] = [http_client.tune_httpcore(), scu.receive_to_files()]
out["after"] = state()
print(json.dumps(out))
"""


def _probe(mode: str) -> dict[str, list[object]]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, timeout=120, check=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]), stderr=[done.stderr])


def test_importing_the_server_adjusts_no_library() -> None:
    """httpcore's read size and pynetdicom's spooling switch are set by start-up calls only."""
    out = _probe("tested-release")
    assert out["imported"] == [64 * 1024, False]  # the libraries' defaults, after every import
    assert out["aiohttp client"] == [64 * 1024, False]  # httpcore is not used then
    assert out["httpx client"] == [1 << 20, False]
    assert out["applied"] == [True, True]
    assert out["after"] == [1 << 20, True]


def test_adjustments_are_skipped_with_a_warning_on_another_release() -> None:
    out = _probe("other-release")
    assert out["httpx client"] == [64 * 1024, False]
    assert out["applied"] == [False, False]
    assert out["after"] == [64 * 1024, False]
    stderr = str(out["stderr"][0])
    assert "httpcore 99.0.0 installed, but the 1 MiB body read size was written for httpcore 1.0.x" in stderr
    assert "pynetdicom 99.0.0 installed" in stderr


def test_written_for_names_the_versions(caplog: pytest.LogCaptureFixture) -> None:
    assert release_series("3.0.4") == "3.0"
    assert release_series("1.0") == "1.0"
    with caplog.at_level(logging.WARNING, logger="smart_imaging.versions"):
        assert written_for("pydicom", release_series(_version("pydicom")), "a test adjustment")
        assert caplog.records == []
        assert not written_for("pydicom", "0.1", "another test adjustment")
        assert not written_for("no-such-distribution-here", "1.0", "a third test adjustment")
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert f"pydicom {_version('pydicom')} installed, but another test adjustment" in messages[0]
    assert "no-such-distribution-here (not installed) installed" in messages[1]


def _version(distribution: str) -> str:
    from importlib import metadata

    return metadata.version(distribution)
