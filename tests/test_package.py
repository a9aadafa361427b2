"""The package surface: `import labkit` is light, and every advertised name and submodule resolves."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import types

import pytest

import labkit


def _public_modules() -> set[str]:
    return {m.name for m in pkgutil.iter_modules(labkit.__path__) if not m.name.startswith("_")}


def test_every_export_and_submodule_resolves():
    for name in labkit.__all__:
        assert getattr(labkit, name) is not None
    for name in _public_modules():
        assert isinstance(getattr(labkit, name), types.ModuleType)


def _listed(package: types.ModuleType) -> set[str]:
    doc = package.__doc__ or ""
    return {line.split()[0] for line in doc.splitlines() if line.startswith("    ") and line.strip()}


def test_the_package_docstring_lists_every_public_module():
    assert _listed(labkit) == _public_modules(), "update the module list in labkit/__init__.py's docstring"


@pytest.mark.parametrize("name", ["kafka", "kafka.engines", "records", "ops", "tasks", "web"])
def test_each_layer_lists_its_modules(name):
    """The tree tells the architecture: each layer's docstring names every module in it, in reading order."""
    package = importlib.import_module(f"labkit.{name}")
    modules = {m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_")}
    where = name.replace(".", "/")
    assert _listed(package) == modules, f"update the module list in labkit/{where}/__init__.py's docstring"


def test_import_labkit_does_not_load_torch():
    code = "import sys, labkit; labkit.load_settings(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
