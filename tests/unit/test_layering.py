"""The import layering the README states, checked on the source: nothing imports a package above it, and the
platform SDKs and model libraries stay in the one package that owns them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.unit

# Lowest first; a module may import its own layer and those before it (README, "Layout").
LAYERS: tuple[tuple[str, ...], ...] = (
    ("domain", "settings", "server_logging"),
    ("knowledge_index", "nlu", "handoff"),
    ("storage",),
    ("cluster",),
    ("bot",),
    ("api", "connectors", "wiring"),  # the HTTP edge and the container of services it is handed
    ("server", "cli"),
)
OWNERS = {  # third-party libraries and the only package that may import them
    "slack_bolt": "connectors", "slack_sdk": "connectors", "telegram": "connectors",
    "faiss": "knowledge_index", "sentence_transformers": "knowledge_index", "onnxruntime": "knowledge_index",
    "torch": "knowledge_index", "tokenizers": "knowledge_index",
}
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _modules(package: str) -> list[Path]:
    single = REPO / f"{package}.py"
    if single.exists():
        return [single]
    return [p for p in (REPO / package).rglob("*.py") if "migrations" not in p.parts]


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def test_every_top_level_package_has_a_layer() -> None:
    on_disk = {p.name for p in REPO.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    on_disk |= {p.stem for p in REPO.glob("*.py")}
    assert on_disk - {"tests", "tools", "bench"} == set(RANK)


def test_imports_only_go_down_the_layers() -> None:
    upward = []
    for package, rank in RANK.items():
        for path in _modules(package):
            for line, target in _imports(path):
                if target in RANK and RANK[target] > rank:
                    upward.append(f"{path.relative_to(REPO)}:{line} imports {target}")
    assert upward == []


def test_sdks_and_model_libraries_stay_in_their_package() -> None:
    strays = []
    for package in RANK:
        for path in _modules(package):
            for line, target in _imports(path):
                owner = OWNERS.get(target)
                if owner is not None and owner != package:
                    strays.append(f"{path.relative_to(REPO)}:{line} imports {target} (only {owner}/ may)")
    assert strays == []
