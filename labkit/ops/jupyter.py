"""The learner's room: JupyterLab as ``labkit lab`` opens it — the notebooks in view, no news prompt.

What a learner sees beside ``00_quickstart`` matters: the lessons' sources
(``notebooks/lessons/``) and ``notebooks/solutions/`` hold every answer, one click away in
JupyterLab's file browser. They stay on disk (the learner's path test and anyone curious can
open them by path), but the file browser does not list them: Jupyter Server's
``ContentsManager.hide_globs`` leaves them out, as it leaves out ``__pycache__``.

JupyterLab 4 also asks every new user "Would you like to get notified about official Jupyter
news?" — a frontend plugin (``@jupyterlab/apputils-extension:announcements``) that
``--LabApp.news_url=None`` does not silence. labkit disables the plugin in a ``page_config.json``
of its own, found through ``JUPYTER_CONFIG_PATH`` (an extra config folder, searched before the
user's own, which stays untouched), and tells the server never to check for updates.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..config import Settings

#: What the file browser leaves out: Jupyter Server's own defaults, and the answers.
HIDDEN = ["__pycache__", "*.pyc", "*.pyo", ".DS_Store", "*~", "solutions", "lessons", "build.py"]

#: The JupyterLab plugin that asks about news and checks for updates.
ANNOUNCEMENTS = "@jupyterlab/apputils-extension:announcements"

#: The lesson the lab opens on.
FIRST_LESSON = "00_quickstart.ipynb"


def write_config(folder: Path) -> Path:
    """Write labkit's JupyterLab page config into ``folder`` (a config folder for ``JUPYTER_CONFIG_PATH``)."""
    labconfig = folder / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    page_config = {"disabledExtensions": {ANNOUNCEMENTS: True}}
    (labconfig / "page_config.json").write_text(json.dumps(page_config, indent=2) + "\n")
    return folder


def jupyter_command(settings: Settings, notebook_dir: Path) -> list[str]:
    """The command that serves ``notebook_dir`` in JupyterLab on ``settings.jupyter_port``."""
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--port={settings.jupyter_port}",
        f"--ServerApp.root_dir={notebook_dir}",
        f"--ip={settings.web_host}",
        f"--LabApp.default_url=/lab/tree/{FIRST_LESSON}",  # the lab opens on its first lesson
        "--LabApp.news_url=None",  # no news feed on the server side either
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--ContentsManager.hide_globs={json.dumps(HIDDEN)}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # containers and CI machines often run as root
    return command


def jupyter_env(config_folder: Path) -> dict[str, str]:
    """The environment that makes JupyterLab read labkit's page config before the user's own."""
    extra = os.environ.get("JUPYTER_CONFIG_PATH")
    return {"JUPYTER_CONFIG_PATH": os.pathsep.join([str(config_folder), *([extra] if extra else [])])}
