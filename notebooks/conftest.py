"""pytest settings for the notebooks under nbval (`make test` runs them beside the unit tests).

The kernels run the `test` preset with one torch thread. nbval starts a notebook's kernel when the notebook's first
cell is set up, with a copy of this process's environment; the hook below sets `COURSE_PRESET` and
`OMP_NUM_THREADS` just around that start and restores them after, so the unit tests that share a pytest-xdist
worker with a notebook keep their own environment. A value set outside (`COURSE_PRESET=cpu pytest --nbval-lax
notebooks`) wins.

nbval waits 5 s (hard-coded) for a cell's remaining outputs after the kernel reports the cell done, and fails the
cell when they lag longer. On a loaded 2-core CPU they did once (2026-12-02, fresh clone, notebook 04's
fine-tuning cell, whose progress bars send hundreds of widget messages; the same notebook alone passed in 63 s):
a failure about the machine, not the notebook. The wait is raised to 60 s; a cell's own time limit is unchanged.
"""
from __future__ import annotations

import os

import pytest

OUTPUT_TIMEOUT_S = 60
KERNEL_ENV = {"COURSE_PRESET": "test", "OMP_NUM_THREADS": "1"}


def pytest_collection_modifyitems(items):
    for item in items:
        if type(item).__name__ == "IPyNbCell" and hasattr(item, "output_timeout"):
            item.output_timeout = OUTPUT_TIMEOUT_S


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    if type(item).__name__ != "IPyNbCell":
        return (yield)
    before = {k: os.environ.get(k) for k in KERNEL_ENV}
    for key, value in KERNEL_ENV.items():
        os.environ.setdefault(key, value)
    try:
        return (yield)
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
