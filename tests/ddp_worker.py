"""Two training steps of every method on fixed inputs, in one process or as one rank of a torchrun job.

tests/test_distributed.py runs it with ``torchrun --nproc_per_node=2`` (gloo, CPU): each rank
takes its half of the global batch; rank 0 saves the loss, every parameter's gradient (after
DDP's average), the parameters and MoCo's queues, for two steps, and the test compares them with
:func:`one_process`, the same steps on the whole batch in the test's own process.
"""
from __future__ import annotations

import contextlib
import sys

import torch

from course_lib import distributed, methods
from course_lib.config import resolve
from course_lib.methods import build_method
from course_lib.models import build_encoder

METHODS = ("vicreg", "barlow_twins", "wmse", "simclr", "moco_v2", "invariance_only")
GLOBAL_BATCH = 64
STEPS = 2


def settings(sync_batchnorm: str = "all"):
    return resolve("test", device="cpu", precision="fp32", batch_size=GLOBAL_BATCH, projector=(64, 64),
                   wmse_hidden=64, wmse_dim=16, wmse_w_size=32, moco_queue=96, sync_batchnorm=sync_batchnorm)


def inputs(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(100 + step)
    return torch.randn(GLOBAL_BATCH, 3, 16, 16, generator=g), torch.randn(GLOBAL_BATCH, 3, 16, 16, generator=g)


@contextlib.contextmanager
def float64():
    """Parameters and inputs in float64 for the parity test. In float32 the comparison is chaotic, not wrong:
    1 and 2 processes add the same numbers in another order, the parameters after step 1 differ by ~1e-7, and
    that can flip a ReLU or a max-pool's choice in step 2. Measured in ONE process, 1 thread against 2:
    Barlow Twins' step-2 gradients differ by 1.2e-2 of the largest entry in float32, 2e-15 in float64."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def run_steps(method: str, world: distributed.World, sync_batchnorm: str = "all") -> list[dict]:
    """``STEPS`` steps (forward on this rank's shard, backward, SGD, after_step) in float64; what each step saw."""
    with float64():
        return _run_steps(method, world, sync_batchnorm)


def _run_steps(method: str, world: distributed.World, sync_batchnorm: str) -> list[dict]:
    cfg = settings(sync_batchnorm)
    torch.manual_seed(0)
    model = build_method(method, build_encoder("N1"), cfg)
    if world.size > 1:
        model = distributed.sync_batchnorm(model, cfg.sync_batchnorm, model.backbones)
    model.train()
    forward = distributed.wrap(model, cfg)
    # SGD, not the course's Adam: Adam's first update is lr * sign(gradient), so a parameter whose exact gradient
    # is 0 (a bias right before BatchNorm) takes a full step in the direction of its fp32 rounding noise, in one
    # process as in two; the second step would then compare two noises. SGD moves it by lr * noise.
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
    out = []
    for step in range(STEPS):
        x_a, x_b = inputs(step)
        idx = world.shard(torch.arange(GLOBAL_BATCH))
        terms = forward(x_a[idx], x_b[idx])
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        seen = {"loss": terms["loss"].detach().clone(),
                "grads": {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}}
        opt.step()
        model.after_step()
        seen["params"] = {n: p.detach().clone() for n, p in model.named_parameters()}
        if method == "moco_v2":
            seen["queue"] = torch.cat([model.queue_a.keys, model.queue_b.keys]).clone()
        out.append(seen)
    return out


def one_process(method: str) -> list[dict]:
    return run_steps(method, distributed.SINGLE)


def main(out_path: str) -> None:
    world, _ = distributed.start(settings())
    results = {method: run_steps(method, world) for method in METHODS}
    # Controls: what the same two processes compute without part of the machinery.
    controls = {f"vicreg, sync_batchnorm={scope}": run_steps("vicreg", world, scope) for scope in ("projector", "none")}
    methods.gather = lambda z: z  # each process's loss on its own rows only: what DDP alone would do
    controls["vicreg, no gather"] = run_steps("vicreg", world)
    if world.is_main:
        torch.save({"world_size": world.size, "results": results, "controls": controls}, out_path)
    distributed.stop()


if __name__ == "__main__":
    main(sys.argv[1])
