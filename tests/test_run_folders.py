"""Run folders travel between devices: a finished run loads anywhere, a resume on another device re-seeds its views.

A CPU generator's state is 5,056 bytes and a CUDA one's 16: neither loads into the other. These tests fake the
other device's state (no GPU needed) and check that loading never touches it and resuming re-seeds, in one line.
"""
import math

import pytest
import torch

from course_lib import data, resolve, train
from course_lib.runs import CHECKPOINT, reseed, restore_generator

CUDA_STATE = torch.zeros(16, dtype=torch.uint8)  # the size of a CUDA generator's state (seed + offset)


pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(runs, **kw):
    return resolve("test", device="cpu", runs_dir=str(runs), encoder="N1", batch_size=64, projector=(32, 32),
                   monitor_every=0, **kw)


def _digits():
    from dataclasses import replace

    ds = data.load_dataset("digits-a")
    return replace(ds, x_train=ds.x_train[:192], y_train=ds.y_train[:192])


def _edit(ckpt_path, **changes):
    ckpt = torch.load(ckpt_path, weights_only=True)
    ckpt.update(changes)
    torch.save(ckpt, ckpt_path)


def test_a_finished_run_loads_without_touching_its_generators(tmp_path, capsys):
    cfg, ds = _cfg(tmp_path, pretrain_epochs=1), _digits()
    run = train.pretrain(cfg, "N1", ds, "vicreg", progress=False)
    path = run.run_dir / CHECKPOINT
    # as if a GPU session had written it: states that a CPU generator would refuse
    _edit(path, generator=CUDA_STATE, generators={"augment": CUDA_STATE}, device="cuda")
    capsys.readouterr()
    again = train.pretrain(cfg, "N1", ds, "vicreg", progress=False)
    assert again.status == "loaded" and again.history == run.history
    assert "re-seeded" not in capsys.readouterr().out
    for p, q in zip(run.encoder.parameters(), again.encoder.parameters()):
        assert torch.equal(p, q)


def _interrupted(tmp_path, dies_in_epoch, epochs=3):
    """A run stopped in the middle of epoch 2: its checkpoint holds epoch 1."""
    cfg, ds = _cfg(tmp_path, pretrain_epochs=epochs, checkpoint_every_s=0), _digits()
    dies_in_epoch(2)
    with pytest.raises(KeyboardInterrupt):
        train.pretrain(cfg, "N1", ds, "vicreg", progress=False)
    dies_in_epoch(None)
    (path,) = tmp_path.glob(f"*/{CHECKPOINT}")
    assert torch.load(path, weights_only=True)["epoch"] == 1
    return cfg, ds, path


def test_a_run_stopped_on_a_gpu_resumes_on_the_cpu_with_reseeded_views(tmp_path, dies_in_epoch, capsys):
    cfg, ds, path = _interrupted(tmp_path, dies_in_epoch)
    _edit(path, generators={"augment": CUDA_STATE}, device="cuda")  # what a T4 session leaves in a shared runs_dir
    saved = path.read_bytes()
    capsys.readouterr()
    resumed = train.pretrain(cfg, "N1", ds, "vicreg", progress=False)
    lines = [line for line in capsys.readouterr().out.splitlines() if "re-seeded" in line]
    assert lines == [f"vicreg-N1: augment RNG state was saved on cuda, this run is on cpu: re-seeded it from seed "
                     f"{cfg.seed + 1} and epoch 1 (the views from here on differ from an uninterrupted run's)"]
    assert resumed.status == "resumed" and [h["epoch"] for h in resumed.history][-1] == 3
    assert all(math.isfinite(h["loss"]) for h in resumed.history)
    # deterministic: the same checkpoint resumed again draws the same views and gives the same losses
    path.write_bytes(saved)
    again = train.pretrain(cfg, "N1", ds, "vicreg", progress=False)
    assert [h["loss"] for h in again.history] == [h["loss"] for h in resumed.history]


def test_an_older_checkpoint_without_its_device_is_reseeded_when_its_state_does_not_fit(tmp_path, dies_in_epoch,
                                                                                          capsys):
    cfg, ds, path = _interrupted(tmp_path, dies_in_epoch, epochs=2)
    ckpt = torch.load(path, weights_only=True)
    del ckpt["device"]
    ckpt["generators"] = {"augment": CUDA_STATE}
    torch.save(ckpt, path)
    capsys.readouterr()
    resumed = train.pretrain(cfg, "N1", ds, "vicreg", progress=False)
    out = capsys.readouterr().out
    assert resumed.status == "resumed"
    assert "augment RNG state in the checkpoint (16 bytes) does not fit this cpu generator: re-seeded it from seed 1 " \
           "and epoch 1" in out


class _CudaLikeGenerator:
    """Stands in for ``torch.Generator(device="cuda")``: it takes only a 16-byte state, as CUDA's does."""

    device = torch.device("cuda")

    def __init__(self, seed):
        self.seed, self.state = seed, None

    def set_state(self, state):
        if len(state) != 16:
            raise RuntimeError(f"Expected a CUDA generator state of size 16 but found {len(state)}")
        self.state = state

    def initial_seed(self):
        return self.seed

    def manual_seed(self, seed):
        self.seed = seed
        return self


def test_a_cpu_state_resumed_on_a_gpu_is_reseeded_from_the_runs_seed_and_epoch():
    cpu_state = torch.Generator().manual_seed(1).get_state()
    assert len(cpu_state) == 5056
    g = _CudaLikeGenerator(seed=1)
    note = restore_generator(g, cpu_state, "cpu", epoch=3)
    assert note.startswith("RNG state was saved on cpu, this run is on cuda: re-seeded it from seed 1 and epoch 3")
    assert g.seed == reseed(1, 3) and g.state is None
    # an old checkpoint that does not say where it was made: tried, refused by the generator, re-seeded
    g = _CudaLikeGenerator(seed=1)
    assert "(5,056 bytes) does not fit this cuda generator" in restore_generator(g, cpu_state, None, 3)
    assert g.seed == reseed(1, 3)
    # the same device: the state itself
    g = _CudaLikeGenerator(seed=1)
    assert restore_generator(g, CUDA_STATE, "cuda", 3) is None and g.state is CUDA_STATE
    assert reseed(1, 3) == reseed(1, 3) != reseed(1, 4) != reseed(2, 3)
    assert 0 <= reseed(1, 3) < 2**63
