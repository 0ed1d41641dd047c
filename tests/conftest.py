"""Fixtures several test files share."""
from __future__ import annotations

import pytest
import torch

from course_lib import data, train

# `make test` runs on 2 pytest-xdist workers with `--dist loadfile --no-loadscope-reorder`. Each file is one unit of
# work, except the eight notebooks, which are one unit run in order on one worker (04 reuses the runs that 01 and 02
# trained; on two workers both would train them). Units are handed out in this order, the longest first, so that no
# worker is left with a long one at the end while the other idles; pytest itself collects in path order.
# (pytest-xdist's own `--dist loadgroup` cannot group them: pytest 9 ignores the group it writes into a test's id.)
LONGEST_FIRST = ("tests/test_real_path.py", "notebooks", "tests/test_distributed.py")


def work_unit(nodeid: str) -> str:
    path = nodeid.split("::")[0]
    return "notebooks" if path.endswith(".ipynb") else path


def pytest_collection_modifyitems(items):
    order = {u: i for i, u in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: order.get(work_unit(item.nodeid), len(order)))  # stable: each file's order kept


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class ByUnit(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return ByUnit(config, log)


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread: on a busy 2-core machine a second thread waits on a busy core (5-10x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def dies_in_epoch(monkeypatch):
    """``dies_in_epoch(epoch, batch)``: the training loop's next run raises KeyboardInterrupt at that batch of that
    epoch (1-based epoch, 0-based batch), as a killed process would; ``dies_in_epoch(None)`` lets it live again."""

    def arm(epoch: int | None, batch: int = 1) -> None:
        if epoch is None:
            monkeypatch.setattr(train, "batches", data.batches)
            return
        calls = {"n": 0}

        def dying_batches(*args, **kwargs):
            calls["n"] += 1
            for i, b in enumerate(data.batches(*args, **kwargs)):
                if calls["n"] == epoch and i == batch:
                    raise KeyboardInterrupt
                yield b

        monkeypatch.setattr(train, "batches", dying_batches)

    return arm
