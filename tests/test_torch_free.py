"""PyTorch only where it is measured or run.

The modules lessons, the CLI and an ONNX-serving processor import never load torch (nor open_clip,
which imports it).
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import labkit.exercises

HEAVY = ("torch", "open_clip")

TORCH_FREE = [
    "labkit",
    "labkit.cli",
    "labkit.config",
    "labkit.kafka.admin",
    "labkit.lab_client",
    "labkit.request_sender",
    "labkit.results_listener",
    "labkit.widgets",
    "labkit.web",
    "labkit.web.app",
    "labkit.ops.monitor",
    "labkit.records.serde",
    "labkit.records.versions",
    "labkit.tasks",
    "labkit.tasks.ocr",
    "labkit.processor",
    "labkit.ops.stack",
    "labkit.bench",
    "labkit.bench.load",
    "labkit.bench.pipeline",
    "labkit.bench.batching",
    "labkit.bench.images",
    "labkit.bench.report",
    "labkit.bench.text",
    "labkit.bench.tower",
    "labkit.clip",
    "labkit.clip.base",
    "labkit.clip.onnx_scorer",
    "labkit.clip.footprint",
    "labkit.clip.artifacts",
    "labkit.clip.fidelity",
    "labkit.clip.prepare",
    "labkit.clip.loading",
    "labkit.clip.tokens",
    "labkit.clip.preprocess",
    "labkit.clip.zero_shot",
    "labkit.clip.cpu",
    "labkit.clip.labels",
    "labkit.exercises",
    *(f"labkit.exercises.{m.name}" for m in pkgutil.iter_modules(labkit.exercises.__path__)),
]


def _python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.splitlines()[-1]


def test_torch_free_modules_import_without_torch():
    """One fresh interpreter imports them one by one and names the first module after which torch is loaded."""
    code = (
        "import importlib, json, sys\n"
        f"heavy = {HEAVY!r}\n"
        f"for name in {TORCH_FREE!r}:\n"
        "    importlib.import_module(name)\n"
        "    loaded = [m for m in heavy if m in sys.modules]\n"
        "    if loaded:\n"
        "        print(json.dumps([name, loaded]))\n"
        "        break\n"
        "else:\n"
        "    print(json.dumps(None))\n"
    )
    assert json.loads(_python(code)) is None  # else [first module that loaded it, what it loaded]


@pytest.mark.parametrize(
    "argv", [["load", "--help"], ["bench", "--help"], ["config"]], ids=["load --help", "bench --help", "config"]
)
def test_cli_commands_that_do_not_measure_the_model_never_load_torch(argv):
    code = (
        "import contextlib, io, json, sys\n"
        "from labkit.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n"
        f"        code = main({argv!r})\n"
        "    except SystemExit as exit:\n"
        "        code = exit.code\n"
        f"print(json.dumps([code, [m for m in {HEAVY!r} if m in sys.modules], len(out.getvalue())]))\n"
    )
    code_, loaded, printed = json.loads(_python(code))
    assert code_ in (0, None) and printed > 0
    assert loaded == []


def test_python_m_labkit_config_imports_no_torch():
    """The same through ``python -m labkit``, read from the interpreter's own import log (``-X importtime``)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "labkit", "config"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    imported = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "labkit" in imported and not imported & set(HEAVY)
