"""labkit's processes on this machine, found in the OS process table by command line and settings."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from pathlib import PureWindowsPath
from typing import Any, NoReturn

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from .._cli_settings import add_settings
from ..config import Settings

_SCRIPTS = {"labkit", "labkit.exe"}  # the console script that installing labkit writes (labkit.exe: Windows)
_MODULES = {"labkit", "labkit.cli"}  # python -m labkit, python -m labkit.cli
_PYTHON = re.compile(r"(python|pypy)[\d.]*w?(\.exe)?", re.IGNORECASE)


def _file_name(path: str) -> str:
    """A program's file name, after its last ``/`` or (Windows) ``\\``."""
    return PureWindowsPath(path).name


def labkit_arguments(command: Sequence[str]) -> list[str] | None:
    """The arguments a command line gives labkit (``["processor", "--task", "ocr"]``); None if not labkit.

    labkit runs as its console script (``…/bin/labkit``, which the OS starts as ``python
    …/bin/labkit``) or as ``python -m labkit``, Python's own options before either; the word
    ``labkit`` among another program's arguments (``python -c … labkit``) never counts.
    """
    if not command:
        return None
    program, words = _file_name(command[0]), list(command[1:])
    if program in _SCRIPTS:  # the console script as a program of its own (a Windows launcher)
        return words
    if not _PYTHON.fullmatch(program):
        return None
    while words:
        word = words.pop(0)
        if word == "--":  # the end of Python's options: the script comes next
            word = words.pop(0) if words else ""
        elif word.startswith("--"):  # Python's long options; one takes a value
            if word == "--check-hash-based-pycs" and words:
                words.pop(0)
            continue
        elif word.startswith("-") and word != "-":  # short ones, alone or together: -u, -OO, -Wignore, -m labkit
            letters = word[1:]
            at = next((i for i, letter in enumerate(letters) if letter in "cmWX"), None)
            if at is None:
                continue
            value = letters[at + 1 :] or (words.pop(0) if words else "")
            if letters[at] == "m":
                return words if value in _MODULES else None
            if letters[at] == "c":
                return None
            continue  # -W and -X, with their value
        return words if _file_name(word) in _SCRIPTS else None
    return None


class _Refused(argparse.ArgumentParser):
    """An argument parser that raises ``ValueError`` where ``argparse`` would print an error and exit."""

    def error(self, message: str) -> NoReturn:
        raise ValueError(f"{self.prog}: {message}")


def processor_flags() -> argparse.ArgumentParser:
    """``labkit processor``'s flags as ``labkit.cli`` parses them: abbreviated, ``--x=y``, the last wins.

    Built here from the same :func:`~labkit._cli_settings.add_settings` (importing ``labkit.cli``
    would close a cycle: it imports :mod:`labkit.ops.stack`, which imports this module); the
    command's own flags are listed again since they decide which abbreviations are unambiguous
    (``tests/test_supervisor.py`` checks that both parsers take the same flags).
    """
    parser = _Refused(prog="labkit processor", add_help=False)
    parser.add_argument("-h", "--help", action="store_true")
    parser.add_argument("--ready-file")
    parser.add_argument("--stats-file")
    return add_settings(parser, "processor")


class _SettingsGiven(Settings):
    """Settings from the given values only: another process's, never this one's own ``LABKIT_*`` variables."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def processor_settings(env: Mapping[str, str], arguments: Sequence[str]) -> Settings:
    """The :class:`Settings` a ``labkit processor ARGUMENTS`` runs with, read as it reads them.

    Its ``LABKIT_*`` variables, with its ``--setting`` flags on top. Raises ``ValueError``
    (pydantic's ``ValidationError`` is one) where labkit would refuse them at start.
    """
    prefix = "LABKIT_"
    values: dict[str, Any] = {
        name[len(prefix) :].lower(): value for name, value in env.items() if name.upper().startswith(prefix)
    }
    flags, _ = processor_flags().parse_known_args(list(arguments))  # known only: a flag new in labkit.cli hides nothing
    values |= {name: value for name, value in vars(flags).items() if value is not None}
    return _SettingsGiven(**{name: value for name, value in values.items() if name in Settings.model_fields})


def local_processors(settings: Settings) -> list[int]:
    """Pids of local ``labkit processor`` processes consuming ``settings``' group on its cluster.

    For when the broker does not list a group's members (the embedded broker answers
    DescribeGroups with none): a running processor is then found where it runs, by the settings
    it runs with (:func:`processor_settings`: its ``LABKIT_*`` variables, as a stack gives them,
    and its flags, which win over them): its consumer group ``<group_prefix>-<task>`` and its cluster.
    """
    import psutil

    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        arguments = labkit_arguments(process.info["cmdline"] or [])
        if not arguments or arguments[0] != "processor":
            continue
        try:
            child = processor_settings(process.environ(), arguments[1:])
        except psutil.Error:
            continue  # gone, or not ours to read
        except ValueError:
            continue  # settings labkit refuses: that processor stopped at its start
        if child.group_id == settings.group_id and child.bootstrap_servers == settings.bootstrap_servers:
            found.append(process.info["pid"])
    return found


def supervised_pid(processor_name: str) -> int | None:
    """The pid behind a processor named ``<anything>-<this host>-<pid>``, if supervised here.

    Such a name: ``processor-host-123``. Supervised: a ``labkit processor`` whose parent is a ``labkit up`` or
    ``labkit lab`` on this machine; else None.
    """
    import socket

    import psutil

    found = re.search(rf"(?:^|-){re.escape(socket.gethostname())}-(\d+)$", processor_name)
    if found is None:
        return None
    pid = int(found.group(1))
    try:
        process = psutil.Process(pid)
        parent = process.parent()
        runs = labkit_arguments(process.cmdline()) or []
        parent_runs = (labkit_arguments(parent.cmdline()) if parent else None) or []
    except psutil.Error:
        return None
    return pid if runs[:1] == ["processor"] and parent_runs[:1] in (["up"], ["lab"]) else None
