"""Fixtures several test files share."""
from __future__ import annotations

import pytest
import torch

from course_lib import data, train


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
