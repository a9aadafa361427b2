"""``python -m labkit.clip THREADS``: the backend check, run in a child process.

:func:`labkit.clip.prepare.decide_in_child` starts it. It reads the ``LABKIT_*`` settings from
its environment, decides, writes the verdict next to the exported files and exits — taking
PyTorch's memory with it. Errors a user can fix are printed as one ``labkit: error: …`` line
(the parent repeats it) and exit code 1.
"""

import sys

from .._logging import log_to_stderr
from ..config import Settings
from ..errors import LabkitError
from .artifacts import settings_folder
from .prepare import decide


def main(threads: int) -> int:
    settings = Settings()
    log_to_stderr(settings.log_level)
    try:
        decide(settings, threads).write(settings_folder(settings), threads)
    except LabkitError as exc:
        print(f"labkit: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
