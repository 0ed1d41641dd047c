"""Values of the spine: presets, data splits, models, metrics, training runs and the report."""
import json
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib import CourseError, resolve
from course_lib.config import with_overrides
from course_lib import data, diagnostics, evaluate, models, report, runs, runtime, train
from course_lib.images import ImageDataset
from course_lib.losses import covariance, invariance, variance, vicreg_loss
from course_lib.runs import CHECKPOINT, weights_fingerprint


# ----------------------------------------------------------------------------- config
def test_unknown_names_fail_with_one_line_naming_the_fix():
    with pytest.raises(CourseError, match="unknown preset 'cpux': use one of test, cpu"):
        resolve("cpux")
    with pytest.raises(CourseError, match="unknown encoder 'resnet50'"):
        resolve("test", encoder="resnet50")
    with pytest.raises(CourseError, match="unknown dataset 'mnist'"):
        resolve("test", dataset_a="mnist")
    with pytest.raises(CourseError, match="unknown setting"):
        resolve("test", pretrain_epoch=3)
    for err in (pytest.raises(CourseError),):
        with err as info:
            resolve("test", dataset_a="cifar10", data_root="/nonexistent/cifar")
        assert "does not exist" in str(info.value) and "\n" not in str(info.value)


def test_knobs_override_the_preset_and_env_picks_the_preset(monkeypatch):
    cfg = resolve("test", encoder="n1", pretrain_epochs=7)
    assert cfg.encoders == ("N1",) and cfg.pretrain_epochs == 7
    assert resolve("test", encoder="all").encoders == ("N1", "N2", "ResNet-18")
    assert resolve("test", dataset_b="none").dataset_b is None
    assert resolve("test").dataset_b == "digits-scattered-b"
    monkeypatch.setenv("COURSE_PRESET", "test")
    assert resolve().preset == "test"
    monkeypatch.delenv("COURSE_PRESET")
    assert resolve().preset == "cpu"


def test_real_data_presets_follow_the_coursework_and_the_literature():
    t4, full = resolve("colab-t4"), resolve("full")
    for cfg in (t4, full):
        assert (cfg.dataset_a, cfg.dataset_b, cfg.image_size, cfg.batch_size) == ("cifar10", "tiny-imagenet", 32, 256)
        assert cfg.encoders == ("N1", "ResNet-18") and cfg.download
    assert (t4.pretrain_epochs, t4.supervised_epochs, t4.probe_epochs) == (30, 30, 20)
    assert t4.augmentation == "crop-flip" and t4.projector == (1024, 1024, 1024) and t4.pretrain_schedule == "constant"
    assert full.pretrain_epochs == 1000 and full.augmentation == "ssl-cifar" and full.pretrain_schedule == "cosine"
    with pytest.raises(CourseError, match="unknown pretrain_schedule 'step'"):
        resolve("test", pretrain_schedule="step")


def test_the_coursework_preset_is_its_budget_and_recipe():
    cfg = resolve("coursework")
    assert cfg.encoders == ("N1", "N2") and (cfg.dataset_a, cfg.dataset_b) == ("cifar10", "tiny-imagenet")
    assert (cfg.batch_size, cfg.supervised_epochs, cfg.probe_epochs, cfg.train_images) == (256, 30, 20, None)
    assert (cfg.augmentation, cfg.crop_scale, cfg.loss_weights) == ("crop-flip", (0.08, 1.0), (25.0, 25.0, 1.0))
    assert cfg.pretrain_schedule == "constant" and cfg.projector == (1024, 1024, 1024)
    # its epochs study: one 40-epoch run read at 20 and 30; the tables use 30, the coursework's choice
    assert (cfg.pretrain_epochs, cfg.epochs_study, cfg.pretrain_total_epochs) == (30, (20, 30, 40), 40)
    n2 = cfg.for_encoder("N2")  # N2's 40-epoch point is the one cut to fit the CPU budget
    assert (n2.pretrain_epochs, n2.pretrain_total_epochs) == (30, 30) and n2.epochs_study == (20, 30)
    with pytest.raises(CourseError, match="constant learning rate"):
        resolve("coursework", pretrain_schedule="cosine")
    with pytest.raises(CourseError, match="whole epoch counts"):
        resolve("test", epochs_study=(2.5,))


def test_pretraining_schedule_warms_up_then_decays_to_zero():
    cfg = resolve("test", pretrain_schedule="cosine", pretrain_epochs=6, pretrain_warmup_epochs=2)
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([param], lr=1.0)
    sched = train.pretrain_scheduler(opt, cfg)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    # warm-up 1/3, 2/3; then cosine over the 4 remaining epochs: 1, (1 + cos(pi/4)) / 2, 1/2, (1 + cos(3pi/4)) / 2
    expected = [1 / 3, 2 / 3, 1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2]
    assert lrs == pytest.approx(expected)
    assert train.pretrain_scheduler(opt, resolve("test")) is None  # "constant": Adam's lr as set


# ----------------------------------------------------------------------------- data
def test_digit_sets_are_disjoint_stratified_and_uint8():
    a, b = data.load_dataset("digits-a"), data.load_dataset("digits-b")
    assert a.classes == ("0", "1", "2", "3", "4") and b.classes == ("5", "6", "7", "8", "9")
    assert not set(a.classes) & set(b.classes)
    for ds in (a, b):
        assert ds.x_train.dtype == torch.uint8 and ds.x_train.shape[1:] == (3, 8, 8)
        assert ds.y_train.min() == 0 and ds.y_train.max() == 4
        # stratified: each class's share of the test split matches the train split within one image
        tr = torch.bincount(ds.y_train) / len(ds.y_train)
        te = torch.bincount(ds.y_test) / len(ds.y_test)
        assert torch.allclose(tr, te, atol=1.5 / len(ds.y_test))
    assert len(a.y_train) + len(a.y_test) + len(b.y_train) + len(b.y_test) == 1797
    # no image is both in train and in test
    train_set = {bytes(x.numpy()) for x in a.x_train}
    assert sum(bytes(x.numpy()) in train_set for x in a.x_test) <= 2  # the digits hold a few exact duplicates


def test_scattered_digits_keep_the_split_and_move_the_digits():
    plain, scattered = data.load_dataset("digits-a"), data.load_dataset("digits-scattered-a")
    assert scattered.x_train.shape[1:] == (3, data.SCATTER_CANVAS, data.SCATTER_CANVAS) == (3, 16, 16)
    assert torch.equal(plain.y_train, scattered.y_train) and torch.equal(plain.y_test, scattered.y_test)
    assert torch.equal(scattered.x_train, data.load_dataset("digits-scattered-a").x_train)  # seeded: same every time
    # every digit is on the canvas: its ink, rescaled by the area it was resized to, is about the 8x8 digit's
    ink_plain = plain.x_train[:, 0].float().sum((1, 2))
    ink = scattered.x_train[:, 0].float().sum((1, 2))
    ratio = ink / ink_plain  # the area factor (side / 8)^2 lies in [1, 2.25]
    assert ratio.min() > 0.8 and ratio.max() < 2.6
    # the bounding box of the ink moves: its top-left corner takes many places
    rows = (scattered.x_train[:, 0] > 0).any(2).float().argmax(1)
    cols = (scattered.x_train[:, 0] > 0).any(1).float().argmax(1)
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 30
    with pytest.raises(CourseError, match="do not fit a 16 px canvas"):
        data.scatter(plain.x_train[:2].numpy(), canvas=16, sides=(8, 20))


def test_scattered_digits_defeat_the_raw_pixel_probe():
    """Why the presets use them: centred 8x8 digits are linearly separable in pixel space, scattered ones are not."""
    cfg = resolve("test", device="cpu", probe_epochs=30)
    plain = evaluate.linear_probe(models.Pixels(), data.load_dataset("digits-a"), cfg)["top1"]
    scattered = evaluate.linear_probe(models.Pixels(), data.load_dataset("digits-scattered-a"), cfg)["top1"]
    assert plain > 95 and scattered < 60, (plain, scattered)


def test_native_image_size_follows_set_a_and_resizes_set_b_to_it():
    from course_lib.augment import build_views

    cfg = resolve("test", device="cpu", dataset_a="digits-scattered-a", dataset_b="digits-b")
    assert cfg.image_size is None and "native size" in cfg.describe()
    a, b = data.load_sets(cfg)
    assert a.image_size == 16 and b.image_size == 16 and b.x_train.dtype == torch.uint8
    assert b.x_train.float().mean() > 10  # the digits survived the resize
    x_a, x_b = build_views(cfg.augmentation, cfg.image_size, cfg.crop_scale)(a.x_train[:4], torch.Generator().manual_seed(0))
    assert x_a.shape == x_b.shape == (4, 3, 16, 16)
    a8, b8 = data.load_sets(resolve("test", device="cpu", dataset_a="digits-a", dataset_b="digits-scattered-b", image_size=12))
    # an explicit size: B is resized to it once, on the host (Tiny ImageNet's 64 px would take 4x the device
    # memory it needs at 32 px); A keeps its own size and the model's input is resized per batch
    assert (a8.image_size, b8.image_size) == (8, 12)


def test_batches_cover_every_index_once_and_drop_the_ragged_tail():
    g = torch.Generator().manual_seed(0)
    idx = torch.cat(list(data.batches(10, 3, g)))
    assert len(idx) == 9 and len(set(idx.tolist())) == 9
    small = list(data.batches(5, 8, g))  # smaller than one batch: one batch with everything
    assert len(small) == 1 and sorted(small[0].tolist()) == list(range(5))


def test_steps_per_epoch_counts_the_batches_the_loop_gets():
    """The training bar's total (train.fit counts steps): CIFAR-10 at 256 is 195 full batches, not 196."""
    g = torch.Generator().manual_seed(0)
    for n, b in ((10, 3), (9, 3), (5, 8), (8, 8), (1, 1), (50_000, 256)):
        assert data.steps_per_epoch(n, b) == len(list(data.batches(n, b, g))), (n, b)
    assert data.steps_per_epoch(50_000, 256) == 195


def test_balanced_subset_takes_the_fraction_of_each_class_seeded():
    y = torch.tensor([0] * 100 + [1] * 50 + [2] * 3)
    s = data.balanced_subset(y, 0.1, seed=0)
    assert torch.bincount(y[s]).tolist() == [10, 5, 1]  # at least one per class
    assert torch.equal(s, data.balanced_subset(y, 0.1, seed=0))
    assert not torch.equal(s, data.balanced_subset(y, 0.1, seed=1))


# ----------------------------------------------------------------------------- models
def test_n1_reconstruction_has_the_courseworks_parameter_count():
    n1 = models.N1(batch_norm=False)
    head = torch.nn.Linear(n1.out_dim, 10)
    assert models.count_parameters(n1) + models.count_parameters(head) == models.N1_COURSEWORK_PARAMS == 403_530
    assert models.count_parameters(models.N1()) == 400_960 + 2 * (32 + 64 + 64 + 128 + 192)


def test_n2_is_the_courseworks_resnet18_by_its_parameter_count():
    # torchvision's ResNet-18 (11,689,512 with its 1000-way fc) with a 3x3 first conv with bias: 7x7 -> 3x3 kernels
    # remove 64 * 3 * 40 weights, the bias adds 64; the max-pool has no parameters, so the count alone cannot tell it
    assert 11_689_512 - 64 * 3 * (49 - 9) + 64 == models.N2_COURSEWORK_PARAMS == 11_681_896
    assert models.count_parameters(models.N2(head=1000)) == 11_681_896
    assert models.count_parameters(models.N2()) == 11_681_896 - (512 * 1000 + 1000) == 11_168_896
    # the literature's CIFAR stem differs by exactly the bias (and keeps no max-pool)
    assert models.count_parameters(models.N2()) - models.count_parameters(models.ResNet18()) == 64


def test_n2_keeps_the_max_pool_so_its_blocks_run_at_16_to_2_px_on_cifar():
    seen = {}
    for name, cls in (("N2", models.N2), ("ResNet-18", models.ResNet18)):
        net, sizes = cls().net, []
        for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
            layer.register_forward_hook(lambda m, inputs, out, sizes=sizes: sizes.append(out.shape[-1]))
        net.eval()(torch.zeros(1, 3, 32, 32))
        seen[name] = sizes
    assert seen == {"N2": [16, 8, 4, 2], "ResNet-18": [32, 16, 8, 4]}
    conv1 = models.N2().net.conv1
    assert conv1.kernel_size == (3, 3) and conv1.stride == (1, 1) and conv1.bias is not None


@pytest.mark.parametrize("name,dim,params", [("N1", 256, 401_920), ("N2", 512, 11_168_896),
                                             ("ResNet-18", 512, 11_168_832)])
def test_encoders_output_size_and_parameters(name, dim, params):
    enc = models.build_encoder(name)
    assert models.count_parameters(enc) == params
    for size in (8, 32):
        assert enc(torch.zeros(2, 3, size, size)).shape == (2, dim)


@pytest.mark.parametrize("size,seen_by_conv", [(8, [8, 4, 4, 2, 2]), (16, [16, 8, 8, 4, 2]), (32, [32, 16, 16, 8, 4])])
def test_n1_pools_after_convolutions_1_3_and_4_while_the_map_is_four_pixels_wide(size, seen_by_conv):
    n1, seen = models.N1(), []
    for block in n1.blocks:
        block.register_forward_pre_hook(lambda m, inputs: seen.append(inputs[0].shape[-1]))
    n1(torch.zeros(2, 3, size, size))
    assert seen == seen_by_conv


def test_channels_last_where_it_pays_and_the_same_numbers_either_way():
    cpu = resolve("test", device="cpu", precision="fp32")
    n1 = models.N1()
    assert runtime.memory_format(cpu, "N1") == runtime.memory_format(cpu, n1) == torch.channels_last
    assert runtime.memory_format(cpu, train.Classifier(n1, 10)) == torch.channels_last  # a wrapped N1 counts
    assert runtime.memory_format(cpu, "ResNet-18") == runtime.memory_format(cpu, models.ResNet18()) == torch.contiguous_format
    assert runtime.memory_format(cpu, "N2") == torch.contiguous_format
    bf16 = resolve("test", device="cpu", precision="bf16")  # a CPU that computes in bf16: every encoder
    assert {runtime.memory_format(bf16, name) for name in ("N1", "N2", "ResNet-18")} == {torch.channels_last}
    assert runtime.memory_format(resolve("test", device="cpu", channels_last="off"), n1) == torch.contiguous_format
    assert runtime.memory_format(resolve("test", device="cpu", channels_last="on"), "ResNet-18") == torch.channels_last
    x = torch.rand(4, 3, 32, 32)
    n1.eval()
    plain = n1(x)
    n1.to(memory_format=torch.channels_last)
    assert torch.allclose(n1(x.contiguous(memory_format=torch.channels_last)), plain, atol=1e-5)


def test_our_resnet18_is_torchvisions_weight_for_weight():
    """course_lib writes ResNet-18 out (torchvision's import costs ~9 s per process); it must be torchvision's."""
    from torchvision.models import resnet18

    torch.manual_seed(3)
    theirs = resnet18(weights=None)
    torch.manual_seed(3)
    ours = models._resnet18()
    a, b = theirs.state_dict(), ours.state_dict()
    assert list(a) == list(b)  # same names in the same order: checkpoints load either way
    assert all(torch.equal(a[k], b[k]) for k in a)  # the same initial weights under one seed
    x = torch.randn(3, 3, 64, 64)
    torch.manual_seed(4)
    ours.load_state_dict(resnet18(weights=None).state_dict())
    torch.manual_seed(4)
    theirs = resnet18(weights=None)
    for mode in (True, False):  # train (batch statistics) and eval (running statistics)
        theirs.train(mode), ours.train(mode)
        assert torch.allclose(ours(x), theirs(x), atol=1e-5)
    assert not torch.allclose(models._resnet18()(x), theirs(x), atol=1e-3)  # a fresh draw differs: the check can fail


def test_resnet18_has_the_cifar_stem():
    net = models.ResNet18().net
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1)
    assert isinstance(net.maxpool, torch.nn.Identity)


def test_projector_is_three_linear_layers_with_batchnorm_between():
    p = models.Projector(256, (1024, 1024, 1024))
    kinds = [type(m).__name__ for m in p]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert p(torch.randn(4, 256)).shape == (4, 1024)


# ----------------------------------------------------------------------------- VICReg
def test_vicreg_terms_on_a_hand_computed_example():
    # z_a = [[0, 0], [2, 2]], z_b = [[0, 2], [2, 0]]
    z_a = torch.tensor([[0.0, 0.0], [2.0, 2.0]])
    z_b = torch.tensor([[0.0, 2.0], [2.0, 0.0]])
    # invariance: squared differences 0, 4, 0, 4 -> mean 2
    assert invariance(z_a, z_b).item() == pytest.approx(2.0)
    # each dim of z_a: values 0, 2 -> unbiased var 2, std sqrt(2) > 1 -> hinge 0
    assert variance(z_a, eps=0).item() == pytest.approx(0.0)
    # z/4: std sqrt(2)/4 = 0.3536 -> hinge 0.6464 in both dims
    assert variance(z_a / 4, eps=0).item() == pytest.approx(1 - math.sqrt(2) / 4)
    # cov(z_a) = [[2, 2], [2, 2]]: off-diagonal squares 4 + 4 = 8, / d = 2 -> 4
    assert covariance(z_a).item() == pytest.approx(4.0)
    # cov(z_b) = [[2, -2], [-2, 2]] -> also 4
    terms = vicreg_loss(z_a, z_b)
    expected = 25 * 2.0 + 25 * 0.0 + 1 * (4.0 + 4.0)
    assert terms["loss"].item() == pytest.approx(expected)


def test_collapsed_embeddings_give_variance_one_and_covariance_zero():
    z = torch.ones(16, 8) * 3.0
    assert variance(z, eps=0).item() == 1.0
    assert variance(z).item() == pytest.approx(1 - math.sqrt(1e-4))
    assert covariance(z).item() == 0.0
    terms = vicreg_loss(z, z.clone())
    assert terms["invariance"].item() == 0.0 and terms["variance"].item() == pytest.approx(2 * (1 - 0.01))


# ----------------------------------------------------------------------------- metrics
def test_topk_accuracy_on_a_known_case():
    logits = torch.tensor([[0.9, 0.1, 0.0], [0.1, 0.2, 0.7], [0.3, 0.5, 0.2], [0.5, 0.4, 0.1]])
    y = torch.tensor([0, 0, 1, 2])
    acc = evaluate.topk_accuracy(logits, y, ks=(1, 2, 5))
    assert acc["top1"] == 50.0  # rows 0 and 2
    assert acc["top2"] == 50.0  # row 1's top-2 is {2, 1}; row 3's is {0, 1}
    assert acc["top5"] == 100.0  # k above the class count counts everything


def test_linear_probe_separates_separable_features():
    cfg = resolve("test", device="cpu", probe_epochs=30)
    ds = data.load_dataset("digits-a")
    acc = evaluate.linear_probe(models.Pixels(), ds, cfg)
    assert acc["top1"] > 90  # 8x8 digits are nearly linearly separable in pixel space
    assert acc["epochs"] == 30


def _one_norm_classifier():
    """BatchNorm2d(3) over the image, then each channel's mean as its class's logit: class = the largest channel."""
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = torch.nn.BatchNorm2d(3, affine=False)

        def forward(self, x):
            return self.norm(x).mean(dim=(2, 3))
    return Net()


def test_recalibrated_batchnorm_holds_the_clean_images_statistics_and_leaves_the_model_alone():
    cfg = resolve("test", device="cpu", precision="fp32", batch_size=4)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (10, 3, 2, 2), dtype=torch.uint8, generator=g)
    net = _one_norm_classifier().train()
    net.norm.running_mean.fill_(7.0)
    ready = runtime.recalibrate_batchnorm(net, x, cfg)
    # whole batches only: images 0-3 and 4-7, each layer the plain average of the two batches' statistics
    z = runtime.prepare(x, None).double()
    means = [z[i : i + 4].mean(dim=(0, 2, 3)) for i in (0, 4)]
    vars_ = [z[i : i + 4].transpose(0, 1).reshape(3, -1).var(dim=1) for i in (0, 4)]  # unbiased, as BatchNorm keeps
    assert torch.allclose(ready.norm.running_mean.double(), (means[0] + means[1]) / 2, atol=1e-5)
    assert torch.allclose(ready.norm.running_var.double(), (vars_[0] + vars_[1]) / 2, atol=1e-5)
    assert not ready.training and ready.norm.momentum == net.norm.momentum == 0.1
    assert net.training and float(net.norm.running_mean[0]) == 7.0  # the model itself is untouched
    # fewer images than a batch: one batch of all of them; a seeded sample when capped
    few = runtime.recalibrate_batchnorm(net, x[:3], cfg)
    assert torch.allclose(few.norm.running_mean.double(), z[:3].mean(dim=(0, 2, 3)), atol=1e-5)
    capped = [runtime.recalibrate_batchnorm(net, x, cfg, images=8, seed=1).norm.running_mean for _ in range(2)]
    assert torch.equal(capped[0], capped[1])


def test_a_classifier_is_tested_with_its_training_images_batchnorm_statistics():
    # training left running means far from the images' (+9 on channel 0, -9 on channel 1): in evaluation mode
    # channel 1 wins whatever the image; recomputed, the class's brighter channel wins again
    cfg = resolve("test", device="cpu", precision="fp32", batch_size=64)
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (192,), generator=g)
    x = torch.randint(0, 80, (192, 3, 4, 4), generator=g)
    x[torch.arange(192), y] += 150  # the class's channel is brighter
    x = x.to(torch.uint8)
    ds = ImageDataset("toy", x[:128], y[:128], x[128:], y[128:], ("a", "b", "c"))
    net = _one_norm_classifier().eval()
    net.norm.running_mean.copy_(torch.tensor([9.0, -9.0, 0.0]))  # stale statistics that favour channel 1
    stale = evaluate.topk_accuracy(runtime.predict(net, ds.x_test, cfg), ds.y_test)["top1"]
    fixed = evaluate.evaluate_classifier(net, ds, cfg)["top1"]
    assert stale < 50 and fixed > 90
    assert float(net.norm.running_mean[0]) == 9.0  # evaluated on a copy
    # the training images, scored the same way
    assert evaluate.evaluate_classifier(net, ds, cfg, ds.x_train, ds.y_train)["top1"] > 90


# ----------------------------------------------------------------------------- training runs
def _tiny(tmp_path, **kw):
    return resolve("test", device="cpu", runs_dir=str(tmp_path), encoder="N1", batch_size=64,
                   projector=(32, 32), **kw)


def test_pretraining_logs_every_term_per_iteration_and_reloads_instead_of_retraining(tmp_path):
    cfg = _tiny(tmp_path, pretrain_epochs=2)
    ds = data.load_dataset("digits-a")
    run = train.pretrain_vicreg(cfg, "N1", ds, progress=False)
    assert run.status == "trained" and run.epochs == 2
    steps = len(ds.y_train) // 64
    assert len(run.history) == 2 * steps
    assert set(run.history[0]) >= {"epoch", "iteration", "loss", "invariance", "variance", "covariance"}
    log = [json.loads(line) for line in (run.run_dir / "log.jsonl").read_text().splitlines()]
    assert log == run.history
    again = train.pretrain_vicreg(cfg, "N1", ds, progress=False)
    assert again.status == "loaded" and again.history == run.history
    for p, q in zip(run.encoder.parameters(), again.encoder.parameters()):
        assert torch.equal(p.cpu(), q.cpu())
    other = train.pretrain_vicreg(_tiny(tmp_path, pretrain_epochs=3), "N1", ds, progress=False)
    assert other.run_dir != run.run_dir  # a changed setting is a new run, never a silent reuse


def test_an_interrupted_run_resumes_from_its_last_checkpoint(tmp_path, dies_in_epoch):
    cfg = _tiny(tmp_path, pretrain_epochs=3, checkpoint_every_s=0)  # a checkpoint after every epoch
    ds = data.load_dataset("digits-a")
    full = train.pretrain_vicreg(_tiny(tmp_path / "ref", pretrain_epochs=3), "N1", ds, progress=False)

    dies_in_epoch(3, batch=2)  # the process "dies" in the middle of the third epoch
    with pytest.raises(KeyboardInterrupt):
        train.pretrain_vicreg(cfg, "N1", ds, progress=False)
    dies_in_epoch(None)
    resumed = train.pretrain_vicreg(cfg, "N1", ds, progress=False)
    assert resumed.status == "resumed"
    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in full.history], rel=1e-4)


def test_a_run_stopped_inside_an_epoch_resumes_at_that_step_as_if_never_stopped(tmp_path, dies_in_epoch):
    """An N2 epoch on a CPU takes 18-38 min: checkpoint_within_epoch_s saves inside the epoch too. Stopped after two
    steps of epoch 3, the checkpoint holds those steps; the resumed run skips them (same permutation, same views)
    and ends with the uninterrupted run's weights and losses, bit for bit."""
    cfg = _tiny(tmp_path, pretrain_epochs=3, checkpoint_within_epoch_s=0)  # a checkpoint after every step
    ds = data.load_dataset("digits-a")
    full = train.pretrain_vicreg(_tiny(tmp_path / "ref", pretrain_epochs=3), "N1", ds, progress=False)

    dies_in_epoch(3, batch=2)
    with pytest.raises(KeyboardInterrupt):
        train.pretrain_vicreg(cfg, "N1", ds, progress=False)
    dies_in_epoch(None)
    (path,) = tmp_path.glob(f"*/{CHECKPOINT}")
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["epoch"] == 2 and ckpt["partial"]["step"] == 2 and len(ckpt["partial"]["rows"]) == 2
    assert len(ckpt["history"]) == 2 * (len(ds.y_train) // 64)  # epoch 3's rows wait in "partial"

    resumed = train.pretrain_vicreg(cfg, "N1", ds, progress=False)
    assert resumed.status == "resumed"
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]
    assert [h["iteration"] for h in resumed.history] == list(range(1, len(full.history) + 1))
    for p, q in zip(resumed.encoder.parameters(), full.encoder.parameters()):
        assert torch.equal(p, q)
    assert "partial" not in torch.load(path, weights_only=True)  # the finished run's checkpoint


def test_the_runs_table_says_how_far_a_stopped_run_got(tmp_path, dies_in_epoch):
    """python -m course_lib.runs: a run stopped 2 steps into epoch 3 of 3 is "training" at 2 epochs + 2 steps, with
    the time left at its own rate; a finished run is "finished"; a folder that never saved is "not started"."""
    cfg = _tiny(tmp_path, pretrain_epochs=3, checkpoint_within_epoch_s=0)
    ds = data.load_dataset("digits-a")
    train.pretrain_vicreg(_tiny(tmp_path, pretrain_epochs=2), "N1", ds, progress=False)  # finished, 2 epochs
    dies_in_epoch(3, batch=2)
    with pytest.raises(KeyboardInterrupt):
        train.pretrain_vicreg(cfg, "N1", ds, progress=False)
    dies_in_epoch(None)
    (tmp_path / "vicreg-N2-never").mkdir()
    (tmp_path / "vicreg-N2-never" / "settings.json").write_text(json.dumps({"method": "vicreg", "epochs": 30}))

    rows = {r["state"]: r for r in map(runs.progress, sorted(p for p in tmp_path.iterdir() if p.is_dir()))}
    assert set(rows) == {"training", "finished", "not started"}
    per_epoch = len(ds.y_train) // 64
    stopped = rows["training"]
    assert (stopped["epoch"], stopped["epochs"], stopped["step"], stopped["steps_per_epoch"]) == (2, 3, 2, per_epoch)
    assert stopped["done"] == pytest.approx((2 * per_epoch + 2) / (3 * per_epoch))
    assert stopped["left"] == pytest.approx(stopped["seconds"] * (1 - stopped["done"]) / stopped["done"])
    assert stopped["seconds"] > 0 and stopped["saved"] >= 0
    assert rows["finished"]["epoch"] == 2 and rows["finished"]["done"] == 1
    assert rows["not started"]["done"] == 0 and rows["not started"]["left"] is None

    table = runs.progress_table(tmp_path)
    lines = table.splitlines()
    assert "| training | 2/3 epochs + 2/" in lines[2] and "vicreg N1" in lines[2]  # unfinished runs first
    assert "| not started |" in lines[3] and "| finished | 2/2 epochs |" in lines[4]
    with pytest.raises(CourseError, match="no runs folder"):
        runs.progress_table(tmp_path / "missing")


def test_checkpoints_inside_an_epoch_wait_for_their_interval(tmp_path, dies_in_epoch):
    """At the default 600 s a digits epoch (a second) never saves inside itself: only its end does."""
    cfg = _tiny(tmp_path, pretrain_epochs=3, checkpoint_every_s=0)
    assert cfg.checkpoint_within_epoch_s == 600
    dies_in_epoch(3, batch=2)
    with pytest.raises(KeyboardInterrupt):
        train.pretrain_vicreg(cfg, "N1", data.load_dataset("digits-a"), progress=False)
    (path,) = tmp_path.glob(f"*/{CHECKPOINT}")
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["epoch"] == 2 and "partial" not in ckpt


_KILLED_CHILD = """
import pathlib, sys, time
from course_lib import data, resolve, train
runs, marker = sys.argv[1], pathlib.Path(sys.argv[2])
cfg = resolve("test", device="cpu", runs_dir=runs, encoder="N1", batch_size=64, projector=(32, 32),
              pretrain_epochs=3, checkpoint_every_s=0)
real, calls = train.batches, [0]
def batches(*args, **kwargs):  # hangs in the middle of the second epoch, until the parent kills it
    calls[0] += 1
    for i, b in enumerate(real(*args, **kwargs)):
        if calls[0] == 2 and i == 2:
            marker.write_text("mid-epoch")
            time.sleep(600)
        yield b
train.batches = batches
train.pretrain_vicreg(cfg, "N1", data.load_dataset("digits-a"), progress=False)
"""


def test_a_killed_process_resumes_from_its_last_finished_epoch(tmp_path):
    """SIGKILL (what a Colab disconnect does) in the middle of epoch 2; the rerun continues after epoch 1."""
    import os
    import signal
    import subprocess
    import sys
    import time

    runs, marker = tmp_path / "runs", tmp_path / "mid-epoch"
    child = subprocess.Popen([sys.executable, "-c", _KILLED_CHILD, str(runs), str(marker)])
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert child.poll() is None, "the child run ended before it reached epoch 2"
            assert time.monotonic() < deadline, "the child run never reached epoch 2"
            time.sleep(0.2)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    (ckpt,) = runs.glob(f"*/{CHECKPOINT}")
    assert torch.load(ckpt, weights_only=True)["epoch"] == 1  # epoch 2 was lost, epoch 1 was not

    cfg = _tiny(runs, pretrain_epochs=3, checkpoint_every_s=0)
    ds = data.load_dataset("digits-a")
    resumed = train.pretrain_vicreg(cfg, "N1", ds, progress=False)
    assert resumed.status == "resumed" and resumed.run_dir == ckpt.parent
    full = train.pretrain_vicreg(_tiny(tmp_path / "ref", pretrain_epochs=3), "N1", ds, progress=False)
    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in full.history], rel=1e-4)


def test_a_diverging_run_stops_with_the_fix_instead_of_finishing(tmp_path):
    # SGD at lr 0.8 on the supervised baseline: the loss goes from ~1.6 to ~1e6 within two epochs (at lr 2.0 it
    # overflows to inf on some CPUs, which stops the run with the NaN/inf message instead)
    cfg = resolve("test", device="cpu", runs_dir=str(tmp_path), supervised_lr=0.8, supervised_epochs=4)
    with pytest.raises(CourseError, match=r"grew from 1\.\d+ to .* the run diverged; lower the learning rate"):
        train.train_supervised(cfg, "N1", data.load_dataset("digits-scattered-a"), progress=False)
    assert not list(tmp_path.glob("*/metrics.json"))  # no finished run to be reused later
    ok = train.train_supervised(with_overrides(cfg, supervised_lr=0.05, supervised_epochs=2), "N1",
                                data.load_dataset("digits-scattered-a"), progress=False)
    assert max(r["loss"] for r in ok.history) < train.DIVERGED * ok.history[0]["loss"]


def test_label_fractions_count_images_per_class_of_the_official_training_split():
    # Tiny ImageNet: 500 per class -> 1 % = 5 per class, 10 % = 50; CIFAR-10: 5,000 per class -> 50 and 500
    for per_class, classes, want in ((500, 200, {0.01: 5, 0.1: 50}), (5000, 10, {0.01: 50, 0.1: 500})):
        y = torch.arange(classes).repeat_interleave(per_class)
        ds = ImageDataset("x", torch.zeros(1, 3, 1, 1, dtype=torch.uint8).expand(len(y), 3, 1, 1), y,
                          torch.zeros(classes, 3, 1, 1, dtype=torch.uint8), torch.arange(classes),
                          tuple(map(str, range(classes))))
        for fraction, k in want.items():
            idx = evaluate.labelled_subset(ds, fraction, seed=0)
            assert torch.bincount(y[idx], minlength=classes).tolist() == [k] * classes


def test_a_linear_head_on_standardized_features_is_folded_back_to_the_raw_ones():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(64, 8, generator=g) * torch.linspace(0.1, 30, 8) + 5.0  # scales a plain SGD lr could not serve
    y = (f[:, 0] > 5).long() + 2 * (f[:, 7] > 5).long()
    cfg = resolve("test", device="cpu")
    head = evaluate.fit_linear_head(f, y, 4, cfg, epochs=50)
    assert (head(f).argmax(1) == y).float().mean() > 0.9  # learnt on standardized features, applied to raw ones


def test_semi_supervised_counts_steps_not_epochs_and_starts_from_the_probe(tmp_path):
    cfg = _tiny(tmp_path, finetune_steps=12, probe_epochs=10)
    ds = data.load_dataset("digits-a")  # 675 training images, about 135 per class: 10 % = 68 images
    enc = diagnostics.untrained_encoder(cfg, "N1", ds)  # random-init as the notebooks use it: A's BatchNorm statistics
    out = evaluate.semi_supervised(enc, ds, cfg, 0.1, init="random-init-N1-A", progress=False)
    assert set(out) == {"knn", "linear", "finetune"}
    want = sum(round(0.1 * n) for n in torch.bincount(ds.y_train).tolist())
    assert out["finetune"]["labels"] == out["linear"]["labels"] == out["knn"]["labels"] == want == 68
    assert out["finetune"]["per_class"] == 68 / 5
    # kNN's vote is capped at the fewest labelled images of a class (13 or 14 here; 1 below, so 1-NN)
    fewest = min(round(0.1 * n) for n in torch.bincount(ds.y_train).tolist())
    assert out["knn"]["k"] == min(cfg.evaluation.knn_k, fewest) == 13
    # batch 64 over 68 labelled images: 1 step per pass, so 12 passes make the 12 steps
    assert out["finetune"]["batch"] == 64 and out["finetune"]["steps"] == 12
    for result in out.values():
        assert 0 <= result["top1"] <= 100 and result["top1"] <= result["top5"]
    # a labelled subset smaller than a batch: the batch shrinks to it, the step count stays
    tiny_out = evaluate.semi_supervised(enc, ds, cfg, 0.01, init="random-init-N1-A", progress=False)
    tiny = tiny_out["finetune"]
    assert tiny["labels"] == 5 and tiny["batch"] == 5 and tiny["steps"] == 12 and tiny_out["knn"]["k"] == 1
    # the fine-tune starts from the same-label probe: before any step it predicts what the probe predicts
    fp32 = with_overrides(cfg, precision="fp32")
    f = runtime.embed(enc, ds.x_train[:70], fp32)
    head = evaluate.fit_linear_head(f, ds.y_train[:70], ds.num_classes, fp32)
    start = evaluate.probe_initialized(enc, head)
    assert torch.allclose(runtime.predict(start, ds.x_test, fp32), head(runtime.embed(enc, ds.x_test, fp32)), atol=1e-4)


def test_the_lpft_head_on_views_fits_what_finetuning_feeds_and_leaves_the_encoder_alone(tmp_path):
    cfg = with_overrides(_tiny(tmp_path, probe_epochs=30), precision="fp32")
    ds = data.load_dataset("digits-a")
    enc = diagnostics.untrained_encoder(cfg, "N1", ds)
    x, y = ds.x_train[:64], ds.y_train[:64]
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    f = evaluate.view_features(enc, x, cfg, batch=32, views=3)
    assert f.shape == (3 * 64, runtime.embed(enc, x[:2], cfg).shape[1])
    assert all(torch.equal(before[k], v) for k, v in enc.state_dict().items())  # running stats untouched
    # copy v of image i is row v * 64 + i: three different crops of one image, not three images
    assert not torch.allclose(f[0], f[64]) and not torch.allclose(f[0], f[1])
    probe = evaluate.fit_linear_head(runtime.embed(enc, x, cfg), y, ds.num_classes, cfg)
    assert evaluate.lpft_head(enc, probe, x, y, ds.num_classes, cfg, 32) is probe  # the default: Kumar et al.'s LP-FT
    views_head = evaluate.lpft_head(enc, probe, x, y, ds.num_classes, with_overrides(cfg, finetune_head="views"), 32,
                                    views=3)
    assert views_head is not probe
    # on the views fine-tuning's first step sees, the views head's loss is below the clean probe's
    test_views = evaluate.view_features(enc, x, with_overrides(cfg, seed=cfg.seed + 1), batch=32, views=2)
    yy = y.repeat(2)
    with torch.no_grad():
        clean_loss = F.cross_entropy(probe(test_views), yy).item()
        views_loss = F.cross_entropy(views_head(test_views), yy).item()
    assert views_loss < clean_loss, (views_loss, clean_loss)
    # the setting names its choices
    with pytest.raises(CourseError, match="finetune_head"):
        resolve("test", finetune_head="augmented")


def test_finetuning_a_retrained_encoder_never_reuses_the_old_run(tmp_path):
    cfg = _tiny(tmp_path, finetune_steps=2)
    ds = data.load_dataset("digits-a")
    enc = diagnostics.untrained_encoder(cfg, "N1", ds)
    assert weights_fingerprint(enc) == weights_fingerprint(diagnostics.untrained_encoder(cfg, "N1", ds))
    evaluate.finetune(enc, ds, cfg, 0.1, init="vicreg-N1-A", progress=False)
    with torch.no_grad():
        enc.fc.bias[0] += 1.0  # "retrained": same name, other weights
    evaluate.finetune(enc, ds, cfg, 0.1, init="vicreg-N1-A", progress=False)
    assert len([d for d in tmp_path.iterdir() if d.name.startswith("finetune-vicreg-N1-A")]) == 2


# ----------------------------------------------------------------------------- report
def test_report_tables_come_from_saved_rows(tmp_path):
    cfg = resolve("test", out_dir=str(tmp_path))
    res = {"top1": 91.234, "top5": 100, "epochs": 3, "seconds": 1.26}
    report.save_rows(cfg, "x", [
        report.make_row("A", "digits 0-4", "ResNet-18", "vicreg", "linear", res, classes=5),
        report.make_row("A", "digits 0-4", "ResNet-18", "random-init", "linear", {**res, "top1": 50.0}, classes=5),
        report.make_row("A", "digits 0-4", "ResNet-18", "supervised", "supervised", {**res, "top1": 99.0}, classes=5),
    ])
    csv_path, md_path = report.write_report(cfg)
    import pandas as pd

    df = pd.read_csv(csv_path)
    assert list(df.columns[:9]) == report.COLUMNS
    assert df.loc[df.method == "vicreg", "top1"].item() == 91.23
    md = md_path.read_text()
    assert "| 91.2 |" in md and "89.6" in md  # ours beside the coursework's
    assert "VICReg's linear top-1 is 91.2 %, random-init's 50.0 % (+41.2 points, noise tolerance ±2.0: " \
           "pretraining helps)" in md
    # each of the coursework's claims is judged once, in the conclusions (one engine, one verdict per claim)
    this_run = md.split("## Conclusions")[1].split("\n### ")[1]  # "This run": the next ### is the real-data table's
    assert this_run.startswith("This run") and this_run.count("*VICReg on N2 (its ResNet-18) gives the best") == 1
    assert "agrees" not in md.split("## Conclusions")[0]


def test_what_pretraining_added_uses_the_noise_rule():
    import pandas as pd

    def table(v, r):
        return pd.DataFrame([report.make_row("A", "d", "N1", m, "linear", {"top1": t, "top5": 100, "epochs": 1,
                                                                          "seconds": 0}) for m, t in
                             (("vicreg", v), ("random-init", r))])

    assert "pretraining helps" in report.findings(table(53.0, 50.0), tolerance={"A": 2.0})[1]
    assert "**within noise**" in report.findings(table(51.5, 50.0), tolerance={"A": 2.0})[1]
    assert "does worse than random weights" in report.findings(table(47.0, 50.0), tolerance={"A": 2.0})[1]
    assert "**within noise**" in report.findings(table(53.0, 50.0), tolerance={"A": 6.7})[1]  # 226 test images


def test_a_finetune_below_its_own_same_label_probe_is_flagged():
    import pandas as pd

    def table(ft, probe, knn=40.0):
        rows = [("finetune-10%", ft), ("linear-10%", probe), ("knn-10%", knn), ("linear", 90.0)]
        return pd.DataFrame([report.make_row("A", "d", "N1", "random-init", p, {"top1": t, "top5": 100, "epochs": 1,
                                                                                 "seconds": 0}, per_class=50.0)
                             for p, t in rows])

    (line,) = report.finetune_findings(table(10.0, 43.6), tolerance={"A": 1.0})  # session 8's CIFAR-10 collapse
    assert "fine-tuned 10.0 %, linear probe 43.6 %, kNN 40.0 % (-33.6 points" in line
    assert "50 per class" in line and "**below its own probe" in line
    assert "fine-tuning adds" in report.finetune_findings(table(47.0, 43.6), tolerance={"A": 1.0})[0]
    assert "within noise of its probe" in report.finetune_findings(table(47.0, 43.6), tolerance={"A": 6.7})[0]
    assert "within noise of its probe" in report.finetune_findings(table(40.0, 43.6), tolerance={"A": 6.7})[0]
    # the kNN's neighbours, where the row recorded them (capped at a class's labelled images: 5-NN with 5 per class)
    with_k = table(47.0, 43.6).assign(k=[None, None, 5, None])
    assert "linear probe 43.6 %, kNN (5-NN) 40.0 %" in report.finetune_findings(with_k, tolerance={"A": 1.0})[0]
    # the probe on *all* labels ("linear", 90 %) is not the fine-tune's peer; without a same-label probe: no line
    assert report.finetune_findings(table(10.0, 43.6).iloc[[0, 3]], tolerance={"A": 1.0}) == []


def test_report_says_which_encoders_the_raw_pixels_beat():
    df = __import__("pandas").DataFrame([
        report.make_row("A", "d", "N1", "vicreg", "linear", {"top1": 84.0, "top5": 100, "epochs": 1, "seconds": 0}),
        report.make_row("A", "d", "N1", "random-init", "linear", {"top1": 60.0, "top5": 100, "epochs": 1, "seconds": 0}),
        report.make_row("B", "d", "N1", "vicreg", "linear", {"top1": 70.0, "top5": 100, "epochs": 1, "seconds": 0}),
        report.make_row("B", "d", "N1", "random-init", "linear", {"top1": 30.0, "top5": 100, "epochs": 1, "seconds": 0}),
    ])
    lines = report.findings(df, {"A": 37.5, "B": 32.0})
    assert "- A linear probe on the raw pixels of set A reaches 37.5 % top-1, the floor any encoder should beat: " \
           "every encoder's linear probe beats it, by 22.5 points or more." in lines
    assert any("set B reaches 32.0 %" in line and "**N1 random-init does not beat it**" in line for line in lines)


def test_one_row_per_run_with_the_columns_of_every_notebook_that_probed_it(tmp_path):
    cfg = resolve("test", out_dir=str(tmp_path))
    res = {"top1": 84.07, "top5": 100, "epochs": 100, "seconds": 0.5}
    report.save_rows(cfg, "04_evaluation", [
        report.make_row("A", "d", "N1", "vicreg", "linear", res, classes=5, pretrain_epochs=10),
        report.make_row("A", "d", "N1", "random-init", "linear", {**res, "top1": 72.6}, classes=5),
    ])
    report.save_rows(cfg, "05_comparison", [
        report.make_row("A", "d", "N1", "vicreg", "linear", res, classes=5, pretrain_epochs=10, effective_rank=27.8),
        report.make_row("A", "d", "N1", "vicreg", "linear", res, classes=5, pretrain_epochs=20, effective_rank=30.1),
    ])
    df = report.load_rows(cfg)
    vicreg = df[df.method == "vicreg"].sort_values("pretrain_epochs")
    assert len(df) == 3 and len(vicreg) == 2  # same top-1, other budget: its own row
    assert vicreg["effective_rank"].tolist() == [27.8, 30.1] and vicreg["pretrain_epochs"].tolist() == [10, 20]


def test_the_epochs_study_extends_only_the_main_vicreg_run(tmp_path):
    cfg = _tiny(tmp_path, pretrain_epochs=1, epochs_study=(1, 2), monitor_every=0)
    ds = data.load_dataset("digits-a")
    main = train.pretrain_vicreg(cfg, "N1", ds, progress=False)
    assert main.epochs == 2 and main.encoder_epoch == 1  # trained to 2, the tables' encoder is the 1-epoch one
    one = train.snapshot_encoder(main, 1, cfg)
    assert all(torch.equal(a, b.to(a.device)) for a, b in zip(one.state_dict().values(), main.encoder.state_dict().values()))
    assert not torch.equal(train.snapshot_encoder(main, 2, cfg).fc.weight, one.fc.weight)
    short = train.pretrain(cfg, "N1", ds, "barlow_twins", progress=False)  # notebook 05's runs keep their budget
    assert short.epochs == 1 and short.encoder_epoch is None
