"""Each public package exports exactly its public names, sorted, with `__module__` set to the package."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("package", ["recuro_async", "mediacrush_async", "orchestrator"])
def test_all_is_sorted_and_complete(package):
    """`__all__` equals the sorted set of public names the package defines."""
    module = importlib.import_module(package)
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, type(importlib))
        and name != "annotations"
    }
    assert module.__all__ == sorted(module.__all__)
    assert set(module.__all__) == public


@pytest.mark.parametrize("package", ["recuro_async", "mediacrush_async", "orchestrator"])
def test_exported_classes_claim_the_package(package):
    """Reprs and tracebacks read `package.Name`, not the private module path."""
    module = importlib.import_module(package)
    for name in module.__all__:
        value = getattr(module, name)
        if isinstance(value, type):
            assert value.__module__ == package, name
