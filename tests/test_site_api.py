"""The API reference page documents every module and every public name of ``fisherbook``.

``book/api.md`` lists the modules by hand (one ``automodule`` each, in reading order), so a new
module must be added there; the first test says which. The second test reads the built page and
checks that each public class and function of each module has an entry, under its module path or,
for the names exported at the top level, under ``fisherbook.<name>``. A public function without a
docstring is left out by autodoc and is caught here too.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest
from test_site import SITE_DIR, parse_page, require_site

import fisherbook

API_PAGE_SOURCE = Path(__file__).resolve().parent.parent / "book" / "api.md"
NOT_DOCUMENTED = {"__main__"}


def public_modules() -> list[str]:
    return sorted(
        f"fisherbook.{info.name}"
        for info in pkgutil.iter_modules(fisherbook.__path__)
        if not info.name.startswith("_") and info.name not in NOT_DOCUMENTED
    )


def public_names(module_name: str) -> list[str]:
    """Classes and functions a module defines for its users: its __all__, else non-underscored."""
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [name for name in vars(module) if not name.startswith("_")]
    return sorted(
        name
        for name in names
        if (inspect.isclass(obj := getattr(module, name)) or inspect.isfunction(obj))
        and obj.__module__ == module_name
    )


def test_every_module_is_on_the_api_page() -> None:
    documented = set(re.findall(r"automodule::\s+(fisherbook\.\w+)", API_PAGE_SOURCE.read_text()))
    missing = sorted(set(public_modules()) - documented)
    assert not missing, f"book/api.md has no `.. automodule::` for {missing}"


@pytest.mark.parametrize("module_name", public_modules())
def test_every_public_name_has_an_entry(module_name: str) -> None:
    require_site()
    ids = parse_page(SITE_DIR / "book" / "api.html").ids
    exported = set(fisherbook.__all__)
    missing = [
        name
        for name in public_names(module_name)
        if f"{module_name}.{name}" not in ids
        and not (name in exported and f"fisherbook.{name}" in ids)
    ]
    assert not missing, (
        f"{module_name}: no entry on the API page for {missing} (a docstring missing, or the "
        "name excluded in book/api.md)"
    )
