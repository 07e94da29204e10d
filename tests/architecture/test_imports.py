"""The layer rules that import-linter cannot see.

import-linter (``make lint``, contracts in pyproject.toml) keeps the layers
pointing inward. Two more rules, checked here over the source:

- an import inside a function is allowed only where an optional or heavy
  dependency needs it, or in ``cityx.cli`` to keep ``cityx --help`` fast,
  and each one says which case it is in a comment on its line or the line
  above (one comment covers a run of imports); an import of another cityx
  package inside a function outside ``cityx.cli`` is never allowed;
- across packages, code imports public names only: no module or name that
  starts with an underscore.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src" / "cityx"


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts)


def _package(path: Path) -> str:
    parts = path.relative_to(SRC).parts
    return parts[0] if len(parts) > 1 else ""


def _absolute(node: ast.ImportFrom, path: Path) -> str:
    if not node.level:
        return node.module or ""
    base = list(("cityx", *path.relative_to(SRC).with_suffix("").parts))
    if path.name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _in_function_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    yield inner


def _commented(lines: list[str], node: ast.stmt) -> bool:
    i = node.lineno - 1
    if "#" in lines[i]:
        return True
    # Walk up over a run of imports to the comment that introduces them.
    while i > 0:
        above = lines[i - 1].strip()
        if above.startswith("#"):
            return True
        if not above.startswith(("import ", "from ")):
            return False
        if "#" in above:  # an import above with its own comment covers the run
            return True
        i -= 1
    return False


def _violations() -> list[str]:
    found = []
    for path in _modules():
        text = path.read_text()
        lines = text.splitlines()
        tree = ast.parse(text)
        here = _package(path)
        rel = path.relative_to(SRC.parent)
        for node in _in_function_imports(tree):
            names = (
                [_absolute(node, path)]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
            )
            internal = [n for n in names if n == "cityx" or n.startswith("cityx.")]
            if internal and here != "cli":
                found.append(f"{rel}:{node.lineno}: imports {internal[0]} inside a function")
            elif not _commented(lines, node):
                found.append(f"{rel}:{node.lineno}: an import inside a function needs a comment")
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            module = _absolute(node, path)
            if not module.startswith("cityx.") or module.split(".")[1] == here:
                continue
            private = [p for p in module.split(".") if p.startswith("_")]
            private += [a.name for a in node.names if a.name.startswith("_")]
            if private:
                found.append(f"{rel}:{node.lineno}: imports private {private[0]} of {module}")
    return found


def test_no_unexplained_or_layer_dodging_imports_inside_functions() -> None:
    assert _violations() == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f():\n    import json\n", "needs a comment"),
        ("def f():\n    from cityx.store import Store  # lazy\n", "inside a function"),
        ("from cityx.store._store import Store\n", "private _store"),
    ],
)
def test_the_checker_catches_each_kind_of_violation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, expected: str
) -> None:
    fake = tmp_path / "cityx"
    (fake / "assess").mkdir(parents=True)
    (fake / "assess" / "bad.py").write_text(source)
    monkeypatch.setattr(__import__(__name__, fromlist=["SRC"]), "SRC", fake)
    assert any(expected in v for v in _violations())
