"""The package surface: `import labkit` is light, and every advertised name and submodule resolves."""

from __future__ import annotations

import subprocess
import sys
import types

import labkit


def test_every_export_and_submodule_resolves():
    for name in labkit.__all__:
        assert getattr(labkit, name) is not None
    for name in labkit._SUBMODULES:
        assert isinstance(getattr(labkit, name), types.ModuleType)


def test_import_labkit_does_not_load_torch():
    code = "import sys, labkit; labkit.load_settings(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
