"""The top-level API: every export resolves, and none is shadowed by a submodule of the same name."""

import importlib
import pkgutil
import types

import pytest_scaling


def test_every_export_is_an_object_not_a_module():
    for info in pkgutil.iter_modules(pytest_scaling.__path__):  # importing a submodule sets a package attribute
        importlib.import_module(f"pytest_scaling.{info.name}")
    for name in pytest_scaling.__all__:
        value = getattr(pytest_scaling, name)
        assert not isinstance(value, types.ModuleType), name
