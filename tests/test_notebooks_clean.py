"""The chapter notebooks are stored as sources: no outputs, no execution counts, cell ids present.

Outputs are produced when the book is built (and cached there); committing them would bloat the
history, hide stale results, and make reviews of prose changes unreadable. Strip them with
``nbstripout --keep-id`` (the pre-commit hook does it on commit).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parent.parent / "book"
NOTEBOOKS = sorted(p for p in BOOK.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def test_the_book_has_notebooks() -> None:
    assert NOTEBOOKS, f"no notebooks found under {BOOK}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.relative_to(BOOK).as_posix() for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert (notebook["nbformat"], notebook["nbformat_minor"]) >= (4, 5), (
        f"{path.name}: nbformat {notebook['nbformat']}.{notebook['nbformat_minor']}; "
        "cell ids need 4.5"
    )
    dirty = []
    for index, cell in enumerate(notebook["cells"]):
        where = f"cell {index} ({cell.get('id', 'no id')})"
        if "id" not in cell:
            dirty.append(f"{where}: no cell id")
        if cell["cell_type"] != "code":
            continue
        if cell.get("outputs"):
            dirty.append(f"{where}: {len(cell['outputs'])} output(s)")
        if cell.get("execution_count") is not None:
            dirty.append(f"{where}: execution_count {cell['execution_count']}")
    assert not dirty, f"{path.name} is not clean (run `nbstripout --keep-id {path}`):\n" + "\n".join(
        dirty
    )


def _site_macros() -> dict[str, str]:
    import yaml

    config = yaml.safe_load((BOOK.parent / "_config.yml").read_text(encoding="utf-8"))
    return config["sphinx"]["config"]["mathjax3_config"]["tex"]["macros"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.relative_to(BOOK).as_posix() for p in NOTEBOOKS])
def test_notebook_defines_the_site_macros_for_jupyter(path: Path) -> None:
    """A chapter opened in Jupyter or Colab renders the book's macros: a hidden first cell defines
    them with the same bodies as the site's MathJax configuration."""
    import re

    first = json.loads(path.read_text(encoding="utf-8"))["cells"][0]
    assert first["cell_type"] == "markdown" and "remove-cell" in first["metadata"].get("tags", []), (
        f"{path.name}: the first cell must be the hidden macro cell"
    )
    pattern = r"\\newcommand\{\\(\w+)\}\{((?:[^{}]|\{[^{}]*\})*)\}"
    defined = dict(re.findall(pattern, "".join(first["source"])))
    assert defined == _site_macros(), f"{path.name}: macros differ from _config.yml"
