"""The learner's path, second part: the lessons test_learner_path.py leaves (01, 03, 05…), on a stack of their own.

Everything is as in that module (one ``labkit up``, one kernel per notebook, cells in order,
template → failing check → solution → passing check, then the whole notebook again); only the
lessons differ, so that pytest-xdist walks the two parts on its two workers at once.
"""

from __future__ import annotations

import pytest
from test_learner_path import CELL_TIMEOUT_S, PART_TWO, lab_stack, walk_twice

__all__ = ["lab_stack"]  # the module-scoped fixture: imported here, it starts this module's own stack


@pytest.mark.timeout(300 + CELL_TIMEOUT_S + 300)
@pytest.mark.parametrize("notebook", PART_TWO)
def test_a_learner_walks_the_notebook_twice(notebook, lab_stack):
    walk_twice(notebook, lab_stack)
