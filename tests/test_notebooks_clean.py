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


# Every chapter is a file of a numbered part of the table of contents (as in tests/test_site.py).
def _chapters() -> list[Path]:
    import yaml

    toc = yaml.safe_load((BOOK.parent / "_toc.yml").read_text(encoding="utf-8"))
    return [
        BOOK.parent / f"{entry['file']}.ipynb"
        for part in toc["parts"]
        if part.get("numbered")
        for entry in part["chapters"]
    ]


CHAPTERS = _chapters()
MAX_VISIBLE_LINES = 15
# Tags that keep a cell's source off the page, or folded away behind a "show code" button.
HIDING_TAGS = {"remove-cell", "remove-input", "hide-input", "hide-cell"}


def test_every_chapter_of_the_toc_is_a_notebook() -> None:
    assert CHAPTERS, "no numbered chapters in _toc.yml"
    missing = [path.name for path in CHAPTERS if not path.is_file()]
    assert not missing, f"chapters in _toc.yml without a notebook: {missing}"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_visible_code_cells_are_short(path: Path) -> None:
    """A visible code cell is at most 15 lines (blank lines count; trailing ones do not): the
    lecture is the prose, the picture and the line that checks, and plumbing (plotting, tables,
    glue bookkeeping) goes into a hidden cell or into the package."""
    long_cells = []
    for index, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
        if cell["cell_type"] != "code" or HIDING_TAGS & set(cell["metadata"].get("tags", [])):
            continue
        lines = len("".join(cell["source"]).rstrip().splitlines())
        if lines > MAX_VISIBLE_LINES:
            long_cells.append(f"cell {index} ({cell.get('id', 'no id')}): {lines} lines")
    assert not long_cells, (
        f"{path.name}: visible code cells longer than {MAX_VISIBLE_LINES} lines (shorten them, or "
        "move plumbing into a hidden cell or the package):\n" + "\n".join(long_cells)
    )
