"""Every SSL method behind the Method interface, and the collapse diagnostics logged while pretraining."""
import copy
from dataclasses import replace

import pytest
import torch

from course_lib import CourseError, data, diagnostics, methods, models, plots, resolve, train
from course_lib.augment import build_views
from course_lib.methods import LITERATURE_CIFAR10_TOP1, METHODS, MoCoV2, build_method

COMPARED = ("vicreg", "barlow_twins", "wmse", "simclr", "moco_v2")


def _cfg(tmp_path, **kw):
    """Tiny settings: N1, 8 px, batch 64, a 32-wide projector, a 16-d W-MSE head, a 32-key queue."""
    base = dict(device="cpu", runs_dir=str(tmp_path), out_dir=str(tmp_path / "out"), encoder="N1", batch_size=64,
                projector=(32, 32), wmse_hidden=64, wmse_dim=16, wmse_w_size=64, moco_queue=32)
    return resolve("test", **{**base, **kw})


pytestmark = pytest.mark.usefixtures("one_thread")


def _small():
    """The first 192 training and 96 test images of digits-a: 3 steps of 64 per epoch."""
    ds = data.load_dataset("digits-a")
    return replace(ds, x_train=ds.x_train[:192], y_train=ds.y_train[:192], x_test=ds.x_test[:96],
                   y_test=ds.y_test[:96])


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- diagnostics
def test_effective_rank_counts_dimensions():
    u = _randn(100, 1)
    v = _randn(1, 12, seed=1)
    assert diagnostics.effective_rank(u @ v) == pytest.approx(1.0, abs=1e-6)  # rank one
    q, _ = torch.linalg.qr(_randn(100, 8))  # 8 orthonormal columns: equal singular values
    assert diagnostics.effective_rank(q) == pytest.approx(8.0, abs=1e-6)
    assert diagnostics.effective_rank(torch.ones(50, 16)) == pytest.approx(1.0, abs=1e-6)  # collapsed to a point
    assert 1 < diagnostics.effective_rank(_randn(200, 16)) < 16


def test_per_dim_std_is_zero_for_constants_and_about_one_for_gaussians():
    const = torch.full((30, 5), 3.0)
    assert torch.equal(diagnostics.per_dim_std(const), torch.zeros(5))
    assert torch.equal(diagnostics.per_dim_std(const, normalize=False), torch.zeros(5))
    z = _randn(4000, 64)
    assert diagnostics.per_dim_std(z).mean().item() == pytest.approx(1.0, abs=0.03)
    assert diagnostics.per_dim_std(3 * z, normalize=False).mean().item() == pytest.approx(3.0, abs=0.1)


@pytest.mark.parametrize("temperature", [diagnostics.KNN_TEMPERATURE, None])  # weighted and majority vote
def test_knn_is_perfect_on_separable_data_and_at_chance_on_shuffled_labels(temperature):
    classes, per_class, dim = 4, 100, 8
    centres = 10 * torch.eye(dim)[:classes]
    y = torch.arange(classes).repeat_interleave(per_class)
    x = centres[y] + _randn(len(y), dim)
    y_test = torch.arange(classes).repeat_interleave(50)
    x_test = centres[y_test] + _randn(len(y_test), dim, seed=1)
    acc = diagnostics.knn_accuracy(x, y, x_test, y_test, k=10, temperature=temperature)
    assert acc["top1"] == 100.0
    shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))]
    chance = diagnostics.knn_accuracy(x, shuffled, x_test, y_test, k=10, temperature=temperature)
    assert 10 < chance["top1"] < 45  # chance is 25 %


def test_knn_weighted_vote_prefers_the_closer_neighbours():
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    query = torch.tensor([[1.0, 0.1]])  # nearly on top of class 0, far from the two class-1 points
    weighted = diagnostics.knn_scores(bank, labels, query, 2, k=3)
    majority = diagnostics.knn_scores(bank, labels, query, 2, k=3, temperature=None)
    assert weighted.argmax().item() == 0 and majority.argmax().item() == 1
    assert majority.tolist() == [[1.0, 2.0]]


def test_a_few_labels_per_class_cap_the_vote_so_the_right_class_can_win():
    # 2 images of class 0 on top of the query, 30 of class 1 a little further away: 20 neighbours bring 18 votes
    # of class 1 that outweigh the two exact matches even weighted (18 e^(0.9/0.07) > 2 e^(1/0.07))
    query = torch.tensor([[1.0, 0.0]])
    near_one = torch.tensor([[0.9, (1 - 0.9**2) ** 0.5]]).repeat(30, 1)
    bank, labels = torch.cat([query.repeat(2, 1), near_one]), torch.tensor([0, 0] + [1] * 30)
    k = diagnostics.knn_neighbours(labels, 20)
    assert k == 2
    assert diagnostics.knn_scores(bank, labels, query, 2, k=20).argmax().item() == 1
    assert diagnostics.knn_scores(bank, labels, query, 2, k=k).argmax().item() == 0
    assert diagnostics.knn_neighbours(torch.arange(5), 20) == 1  # one image per class: 1-NN
    assert diagnostics.knn_neighbours(torch.tensor([3] * 40 + [7] * 25), 20) == 20  # absent labels do not count


def test_untrained_encoder_gets_batchnorm_statistics_of_the_data(tmp_path):
    cfg, ds = _cfg(tmp_path), _small()
    fresh = train.random_encoder(cfg, "N1")
    calibrated = diagnostics.untrained_encoder(cfg, "N1", ds)
    assert not calibrated.training
    for a, b in zip(fresh.state_dict().items(), calibrated.state_dict().items()):
        if a[0].endswith(("weight", "bias")):
            assert torch.equal(a[1], b[1])  # same initial weights, only the statistics differ
    assert calibrated.blocks[0][1].running_mean.abs().sum() > 0 and calibrated.blocks[0][1].momentum == 0.1
    # with the initial statistics (mean 0, var 1) every embedding points the same way
    assert diagnostics.measure(fresh, ds, cfg)["effective_rank"] < 3
    assert diagnostics.measure(calibrated, ds, cfg)["effective_rank"] > 20


# ----------------------------------------------------------------------------- methods
def test_registry_and_settings(tmp_path):
    assert set(COMPARED) | {"invariance_only"} == set(METHODS)
    assert set(LITERATURE_CIFAR10_TOP1) == set(COMPARED)
    assert resolve("test").methods == COMPARED
    with pytest.raises(CourseError, match="unknown method"):
        resolve("test", methods=["vicreg", "byol"])
    cfg = _cfg(tmp_path)
    bt = build_method("barlow_twins", models.N1(), cfg)
    assert bt.lambd == pytest.approx(1 / 32) and bt.settings()["lambda"] == bt.lambd
    assert build_method("barlow_twins", models.N1(), resolve("test", barlow_lambda=0.005)).lambd == 0.005
    # W-MSE cannot whiten 64 dimensions with sub-batches of 64 rows: refused at construction, naming the fix
    with pytest.raises(CourseError, match="wmse_dim"):
        build_method("wmse", models.N1(), _cfg(tmp_path, wmse_dim=64))


def test_each_method_takes_its_papers_arguments_read_from_the_config_in_one_place(tmp_path):
    cfg = resolve("test", loss_weights=(5.0, 50.0, 2.0), simclr_temperature=0.1, moco_queue=128, moco_momentum=0.9,
                  moco_temperature=0.3, wmse_w_size=96, wmse_dim=16, batch_size=128)
    vic = build_method("vicreg", models.N1(), cfg)
    assert (vic.coeffs, vic.settings()["loss_weights"]) == ((5.0, 50.0, 2.0), (5.0, 50.0, 2.0))
    # the same method built by hand, with the official code's names, is the same method
    by_hand = methods.VICReg(models.N1(), projector=cfg.projector, sim_coeff=5.0, std_coeff=50.0, cov_coeff=2.0)
    assert by_hand.settings() == vic.settings()
    assert build_method("invariance_only", models.N1(), cfg).sim_coeff == 5.0
    assert build_method("simclr", models.N1(), cfg).temperature == 0.1
    moco = build_method("moco_v2", models.N1(), cfg)
    assert (moco.queue_size, moco.momentum, moco.temperature, len(moco.queue_a.keys)) == (128, 0.9, 0.3, 128)
    wmse = build_method("wmse", models.N1(), cfg)
    assert (wmse.w_size, wmse.emb, wmse.settings()["head"]) == (96, 16, (cfg.wmse_hidden, 16))
    assert not any(hasattr(m, "cfg") for m in (vic, moco, wmse))  # a method holds its arguments, not the config


def _steps(method, cfg, n_steps=6):
    torch.manual_seed(0)
    model = build_method(method, models.N1(), cfg)
    images = data.load_dataset("digits-a").x_train[:64]  # 64 images of 8x8
    views = build_views(cfg.augmentation, cfg.image_size, cfg.crop_scale)
    x_a, x_b = views(images, torch.Generator().manual_seed(0))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    losses = []
    for _ in range(n_steps):  # the same batch every step: the loss should fall
        out = model(x_a, x_b)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        model.after_step()
        losses.append(out["loss"].item())
    return model, losses


@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_method_trains_on_tiny_data(method, tmp_path):
    _, losses = _steps(method, _cfg(tmp_path))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] != losses[0]
    if method != "moco_v2":  # MoCo's queue swaps random negatives for real, harder ones as it fills
        assert losses[-1] < losses[0]


def test_moco_key_encoder_gets_no_gradient_and_follows_the_momentum_rule(tmp_path):
    cfg = _cfg(tmp_path, moco_momentum=0.9)
    model = build_method("moco_v2", models.N1(), cfg)
    assert isinstance(model, MoCoV2)
    key_params = [*model.key_encoder.parameters(), *model.key_projector.parameters()]
    assert not any(p.requires_grad for p in key_params)
    for q, k in zip(model.encoder.parameters(), model.key_encoder.parameters()):
        assert torch.equal(q, k)  # the key encoder starts as a copy
    x = data.load_dataset("digits-a").x_train[:64]
    x = x.float() / 127.5 - 1
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model.train()
    out = model(x, x.flip(-1))
    out["loss"].backward()
    assert all(p.grad is None for p in key_params)
    assert all(p.grad is not None for p in model.encoder.parameters())
    keys_before = [p.detach().clone() for p in key_params]
    queue_before = model.queue_a.keys.clone()
    opt.step()
    model.after_step()
    online = [*model.encoder.parameters(), *model.projector.parameters()]
    for k_old, k_new, q in zip(keys_before, key_params, online):
        torch.testing.assert_close(k_new, 0.9 * k_old + 0.1 * q.detach())
    assert not torch.equal(model.queue_a.keys, queue_before) and int(model.queue_a.ptr) == 32 % 32
    # moved with the module, saved in the state dict (so a resumed run keeps its queue and key encoder)
    state = model.state_dict()
    assert "queue_a.keys" in state and "key_encoder.fc.weight" in state
    clone = copy.deepcopy(model)
    assert torch.equal(clone.queue_b.keys, model.queue_b.keys)


# ----------------------------------------------------------------------------- monitor during pretraining
def test_pretraining_logs_diagnostics_per_epoch_and_they_survive_a_reload(tmp_path):
    cfg = _cfg(tmp_path, pretrain_epochs=2, checkpoint_every_s=0)
    ds = _small()
    run = train.pretrain(cfg, "N1", ds, "simclr", progress=False)
    assert [r["epoch"] for r in run.epoch_metrics] == [1, 2]
    for r in run.epoch_metrics:
        assert set(r) == {"epoch", "std", "effective_rank", "knn_top1"}
        assert 0 < r["std"] and 1 <= r["effective_rank"] <= 256 and 20 < r["knn_top1"] <= 100
    again = train.pretrain(cfg, "N1", ds, "simclr", progress=False)
    assert again.status == "loaded" and again.epoch_metrics == run.epoch_metrics
    # the last record is what measure() says of the final encoder
    final = diagnostics.measure(again.encoder, ds, cfg)
    assert final == pytest.approx({k: v for k, v in run.epoch_metrics[-1].items() if k != "epoch"}, rel=1e-4)
    sparse = train.pretrain(_cfg(tmp_path, pretrain_epochs=3, monitor_every=2), "N1", ds, "vicreg", progress=False)
    assert [r["epoch"] for r in sparse.epoch_metrics] == [2, 3]  # every 2nd epoch, and always the last
    off = train.pretrain(_cfg(tmp_path, pretrain_epochs=1, monitor_every=0), "N1", ds, "vicreg", progress=False)
    assert off.epoch_metrics == []
    fig = plots.plot_diagnostics({"simclr": run.epoch_metrics, "vicreg": sparse.epoch_metrics}, baseline=final,
                                 path=plots.figure_path(cfg, "diagnostics"))
    assert len(fig.axes) == 3 and (tmp_path / "out" / "figures" / "diagnostics.png").exists()


def test_a_resumed_run_keeps_the_diagnostics_of_the_epochs_before_the_interruption(tmp_path, dies_in_epoch):
    cfg = _cfg(tmp_path, pretrain_epochs=3, checkpoint_every_s=0)
    ds = _small()
    full = train.pretrain(_cfg(tmp_path / "ref", pretrain_epochs=3), "N1", ds, "moco_v2", progress=False)
    dies_in_epoch(3, batch=1)  # the process "dies" in the middle of the third epoch
    with pytest.raises(KeyboardInterrupt):
        train.pretrain(cfg, "N1", ds, "moco_v2", progress=False)
    dies_in_epoch(None)
    resumed = train.pretrain(cfg, "N1", ds, "moco_v2", progress=False)
    assert resumed.status == "resumed"
    assert [r["epoch"] for r in resumed.epoch_metrics] == [1, 2, 3]
    for a, b in zip(resumed.epoch_metrics, full.epoch_metrics):  # MoCo's queue and key encoder resumed too
        assert a == pytest.approx(b, rel=1e-3, abs=1e-3)
