"""One precision policy for every device, driven here with faked GPUs; fp16 + GradScaler trained for real on the CPU."""
import math
import os
from dataclasses import replace

import pytest
import torch

from course_lib import config, data, resolve, runtime, train
from course_lib.config import choose_precision
from course_lib.methods import METHODS


pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- the policy, a pure function
@pytest.mark.parametrize("device,capability,native,name,scaler", [
    ("cuda", (7, 0), False, "fp16", True),   # V100
    ("cuda", (7, 5), False, "fp16", True),   # T4 (Colab): bf16 would be emulated, fp16 has tensor cores
    ("cuda", (8, 0), False, "bf16", False),  # A100
    ("cuda", (8, 6), False, "bf16", False),  # A10/RTX 30xx
    ("cuda", (9, 0), False, "bf16", False),  # H100/H200
    ("cpu", None, True, "bf16", False),      # AVX512-BF16 or AMX
    ("cpu", None, False, "fp32", False),     # emulated bf16 is slower than fp32
    ("mps", None, False, "fp32", False),
])
def test_auto_precision_follows_the_hardware(device, capability, native, name, scaler):
    p = choose_precision(device, capability, native, "auto")
    assert (p.name, p.grad_scaler) == (name, scaler)
    assert "\n" not in p.why


def test_an_explicit_precision_is_taken_as_asked_and_fp16_always_gets_a_scaler():
    for device, cap in (("cuda", (7, 5)), ("cuda", (9, 0)), ("cpu", None)):
        assert choose_precision(device, cap, False, "fp32").dtype is None
        assert choose_precision(device, cap, False, "bf16") == choose_precision(device, cap, True, "bf16")
        assert choose_precision(device, cap, False, "bf16").dtype == torch.bfloat16
        fp16 = choose_precision(device, cap, False, "fp16")
        assert fp16.dtype == torch.float16 and fp16.grad_scaler


def _fake_gpu(monkeypatch, capability):
    """A visible CUDA GPU of this compute capability that says bf16 is supported (as a T4 does: emulation)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)


@pytest.mark.parametrize("gpu,capability,dtype", [
    ("T4", (7, 5), torch.float16), ("A100", (8, 0), torch.bfloat16), ("H200", (9, 0), torch.bfloat16)])
def test_config_picks_the_gpus_precision_from_its_capability_not_is_bf16_supported(monkeypatch, gpu, capability,
                                                                                   dtype):
    _fake_gpu(monkeypatch, capability)
    cfg = resolve("test", device="cuda")
    assert cfg.amp_dtype == dtype, gpu
    assert cfg.precision_policy.grad_scaler == (dtype == torch.float16)
    assert resolve("colab-t4", device="cuda").amp_dtype == dtype  # the presets have no say: precision="auto"


@pytest.mark.parametrize("native,dtype", [(True, torch.bfloat16), (False, None)])
def test_config_picks_bf16_only_on_a_cpu_that_computes_it_natively(monkeypatch, native, dtype):
    monkeypatch.setattr(config, "cpu_has_native_bf16", lambda: native)
    cfg = resolve("test", device="cpu")
    assert cfg.amp_dtype == dtype and runtime.grad_scaler(cfg) is None


def test_the_scaler_lives_on_the_runs_device():
    scaler = runtime.grad_scaler(resolve("test", device="cpu", precision="fp16"))
    assert isinstance(scaler, torch.amp.GradScaler) and scaler.is_enabled()  # GradScaler() alone disables on a CPU
    assert runtime.grad_scaler(resolve("test", device="cpu", precision="bf16")) is None


def test_gpus_get_tf32_and_the_autotuner_unless_deterministic_is_asked(monkeypatch):
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32,
              torch.backends.cudnn.deterministic, torch.are_deterministic_algorithms_enabled())
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    _fake_gpu(monkeypatch, (9, 0))
    try:
        runtime.configure_backends(resolve("test", device="cuda"))
        fast = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32,
                torch.backends.cudnn.deterministic, torch.are_deterministic_algorithms_enabled())
        assert fast == (True, True, True, False, False)
        runtime.configure_backends(resolve("test", device="cuda", deterministic=True))
        exact = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32,
                 torch.backends.cudnn.deterministic, torch.are_deterministic_algorithms_enabled())
        assert exact == (False, False, False, True, True)
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        runtime.configure_backends(resolve("test", device="cpu"))  # the config decides, in either direction
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32 = \
            before[0], before[1], before[2]
        torch.backends.cudnn.deterministic = before[3]
        torch.use_deterministic_algorithms(before[4])


# ----------------------------------------------------------------------------- fp16 + GradScaler, really run on the CPU
def _small(images: int = 192):
    """The first ``images`` training and 96 test images of digits-a (8 px): ``images / 64`` steps of 64 an epoch."""
    ds = data.load_dataset("digits-a")
    return replace(ds, x_train=ds.x_train[:images], y_train=ds.y_train[:images], x_test=ds.x_test[:96],
                   y_test=ds.y_test[:96])


def _watch_scalers(monkeypatch) -> list:
    made = []

    def watched(cfg):
        made.append(runtime.grad_scaler(cfg))
        return made[-1]

    monkeypatch.setattr(train, "grad_scaler", watched)
    return made


@pytest.mark.parametrize("method", sorted(METHODS))
def test_an_fp16_gradscaler_step_trains_every_method_on_the_cpu(method, tmp_path, monkeypatch):
    made = _watch_scalers(monkeypatch)
    cfg = resolve("test", device="cpu", precision="fp16", runs_dir=str(tmp_path), encoder="N1", batch_size=32,
                  projector=(32, 32), wmse_hidden=64, wmse_dim=16, wmse_w_size=32, moco_queue=32,
                  pretrain_epochs=1, monitor_every=0, checkpoint_every_s=0)
    seen, real_build = [], train.build_encoder

    def build(name):  # what the step computes in: the encoder's output dtype under autocast
        encoder = real_build(name)
        encoder.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
        return encoder

    monkeypatch.setattr(train, "build_encoder", build)
    run = train.pretrain(cfg, "N1", _small(64), method, progress=False)  # 2 steps of 32: fp16 on a CPU is emulated
    losses = [h["loss"] for h in run.history]
    print(f"fp16 + GradScaler on the CPU, {method}: losses {', '.join(f'{v:.4g}' for v in losses)}")
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    (scaler,) = made
    assert scaler.is_enabled() and scaler._device == "cpu"
    assert scaler.get_scale() > 0 and scaler._get_growth_tracker() >= 0  # it scaled and stepped
    assert cfg.amp_dtype == torch.float16 and set(seen) == {torch.float16}


def test_fp16_vicreg_loss_falls_on_the_digits(tmp_path, monkeypatch):
    made = _watch_scalers(monkeypatch)
    # fp16 on a CPU is emulated: a backward pass at batch 64 takes ~3 s here, so 3 steps of 32 an epoch (~20 s in
    # all); the loss falls by ~25 % over the 4 epochs, well past the 10 % asked
    cfg = resolve("test", device="cpu", precision="fp16", runs_dir=str(tmp_path), encoder="N1", batch_size=32,
                  projector=(32, 32), pretrain_epochs=4, monitor_every=0)
    run = train.pretrain(cfg, "N1", _small(96), "vicreg", progress=False)
    by_epoch = [sum(h["loss"] for h in run.history if h["epoch"] == e) / sum(h["epoch"] == e for h in run.history)
                for e in (1, 2, 3, 4)]
    print(f"fp16 + GradScaler VICReg on the digits, mean loss per epoch: {', '.join(f'{v:.3f}' for v in by_epoch)}")
    assert all(math.isfinite(v) for v in by_epoch)
    assert by_epoch[-1] < by_epoch[0] * 0.9, by_epoch
    assert made[0].is_enabled()
