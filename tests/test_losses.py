"""Values of the SSL losses: hand-computed examples, collapse, parity with lightly, input checks."""
import copy
import math

import pytest
import torch
from torch import nn

from course_lib.losses import (
    BarlowTwinsLoss,
    MoCoQueue,
    NTXentLoss,
    VICRegLoss,
    WMSELoss,
    barlow_twins_loss,
    covariance,
    invariance,
    moco_loss,
    momentum_update,
    nt_xent_loss,
    variance,
    vicreg_loss,
    whiten,
    wmse_loss,
)

T = torch.tensor


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def close(actual, expected, tol=1e-5):
    torch.testing.assert_close(torch.as_tensor(actual).float(), torch.as_tensor(expected).float(), rtol=tol, atol=tol)


# two-view losses, called as loss(z_a, z_b) -> dict
PAIR_LOSSES = {
    "vicreg": vicreg_loss,
    "barlow_twins": barlow_twins_loss,
    "nt_xent": nt_xent_loss,
    "wmse": lambda a, b: wmse_loss([a, b], w_size=8),
}


# ---------------------------------------------------------------- hand-computed examples

def test_vicreg_hand_example():
    # z_a = 0.5 [[1, 1], [-1, -1]], z_b = 0.5 [[1, -1], [-1, 1]], eps = 0, n = 2, d = 2
    # invariance: z_a - z_b = [[0, 1], [0, -1]] -> mean of squares (0 + 1 + 0 + 1) / 4 = 0.5
    # variance: every column is +-0.5, Var (unbiased, /(n-1)) = 0.5 -> relu(1 - sqrt(0.5)) = 0.29289
    #           per branch; summed over the two branches 0.58579
    # covariance: C(Z_a) = [[.5, .5], [.5, .5]] -> off-diagonal 2 * 0.25 / d = 0.25; same for z_b -> 0.5
    # loss = 25 * 0.5 + 25 * 0.58579 + 1 * 0.5 = 27.64466
    z_a = 0.5 * T([[1.0, 1.0], [-1.0, -1.0]])
    z_b = 0.5 * T([[1.0, -1.0], [-1.0, 1.0]])
    out = vicreg_loss(z_a, z_b, eps=0.0)
    close(out["invariance"], 0.5)
    close(out["variance"], 2 * (1 - math.sqrt(0.5)))
    close(out["covariance"], 0.5)
    close(out["loss"], 25 * 0.5 + 25 * 2 * (1 - math.sqrt(0.5)) + 0.5)


def test_barlow_twins_hand_example():
    # standardize (biased std): z_a = [[3, 5], [1, 1]] -> col 0 mean 2, std 1; col 1 mean 3, std 2
    #   -> [[1, 1], [-1, -1]];  z_b = [[0, 2], [4, 0]] -> [[-1, 1], [1, -1]]
    # C = z_a^T z_b / 2 = [[-1, 1], [-1, 1]]
    # on_diagonal = (1 - (-1))^2 + (1 - 1)^2 = 4;  off_diagonal = 1^2 + (-1)^2 = 2
    # loss (lambda = 0.5) = 4 + 0.5 * 2 = 5
    z_a, z_b = T([[3.0, 5.0], [1.0, 1.0]]), T([[0.0, 2.0], [4.0, 0.0]])
    out = barlow_twins_loss(z_a, z_b, lambda_param=0.5, eps=0.0)
    close(out["on_diagonal"], 4.0)
    close(out["off_diagonal"], 2.0)
    close(out["loss"], 5.0)


def test_nt_xent_hand_example():
    # normalized rows: z_a = [e1, e2], z_b = [e1, e2] (norms 3, 2 and 5, 1 divide out)
    # anchor e1 (row 0 of z_a): positive e1 (sim 1), negatives e2, e2 (sim 0); tau = 0.5:
    #   l = -log(e^2 / (e^2 + 2 e^0)) = log(1 + 2 e^-2) = 0.239543, the same for all 4 anchors
    z_a, z_b = T([[3.0, 0.0], [0.0, 2.0]]), T([[5.0, 0.0], [0.0, 1.0]])
    out = nt_xent_loss(z_a, z_b, temperature=0.5)
    close(out["loss"], math.log(1 + 2 * math.exp(-2)))
    close(out["positive_similarity"], 1.0)
    close(out["negative_similarity"], 0.0)
    # positives orthogonal instead: anchor e1 has positive e2 (0), negatives e2 (0) and e1 (sim 1):
    #   l = -log(e^0 / (e^0 + e^0 + e^2)) = log(2 + e^2) = 2.239543
    out = nt_xent_loss(z_a, z_b.flip(0), temperature=0.5)
    close(out["loss"], math.log(2 + math.exp(2)))


def test_moco_hand_example():
    # q = e1; k = 2 e1 -> normalized e1, sim 1; queue = [e2, -e1] -> sims 0, -1; tau = 1
    # loss = -log(e^1 / (e^1 + e^0 + e^-1)) = log(1 + e^-1 + e^-2) = 0.407606
    q, k, queue = T([[1.0, 0.0]]), T([[2.0, 0.0]]), T([[0.0, 1.0], [-1.0, 0.0]])
    out = moco_loss(q, k, queue, temperature=1.0)
    close(out["loss"], math.log(1 + math.exp(-1) + math.exp(-2)))
    close(out["positive_similarity"], 1.0)
    close(out["negative_similarity"], -0.5)


def test_wmse_hand_example():
    # v = [[1, 0], [0, 1], [-1, -1]]: mean 0, Cov = [[2, 1], [1, 2]] / (3 - 1) = [[1, .5], [.5, 1]]
    # Cholesky L = [[1, 0], [.5, sqrt(.75)]]; z = L^-1 v = (1, -.577), (0, 1.155), (-1, -.577)
    # normalized: (.866, -.5), (0, 1), (-.866, -.5): three unit vectors 120 degrees apart.
    # View b holds the same rows rotated by one, so it whitens to the same vectors, rotated:
    # each positive pair is 120 degrees apart, ||u - w||^2 = 2 - 2 cos 120 = 3, so loss = 3.
    a = T([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    z, info = whiten(a)
    assert int(info) == 0
    close(z, T([[1.0, -0.5 / math.sqrt(0.75)], [0.0, 1 / math.sqrt(0.75)], [-1.0, -0.5 / math.sqrt(0.75)]]))
    b = a.roll(-1, dims=0)
    close(wmse_loss([a, b], w_size=3)["loss"], 3.0)
    close(wmse_loss([a, b], w_size=3, joint_views=True)["loss"], 3.0)  # same set twice: same directions
    close(wmse_loss([a, a], w_size=3)["loss"], 0.0)


def test_whiten_gives_identity_covariance():
    v = randn(64, 8) @ randn(8, 8, seed=1)  # correlated dimensions
    z, info = whiten(v)
    assert int(info) == 0
    close(z.mean(dim=0), torch.zeros(8))
    close(z.T @ z / (64 - 1), torch.eye(8), tol=1e-4)


def test_wmse_sub_batches_are_whitened_separately():
    a, b, c = randn(24, 4, seed=1), randn(24, 4, seed=2), randn(24, 4, seed=3)
    # by hand: 3 consecutive sub-batches of 8 rows, each view whitened on its own, 3 view pairs
    z = [torch.cat([nn.functional.normalize(whiten(v[i : i + 8])[0]) for i in (0, 8, 16)]) for v in (a, b, c)]
    expected = sum((z[i] - z[j]).pow(2).sum(dim=1).mean() for i, j in [(0, 1), (0, 2), (1, 2)]) / 3
    close(wmse_loss([a, b, c], w_size=8)["loss"], expected)
    # a batch that w_size does not divide: 26 // 8 = 3 sub-batches of 9, 9 and 8 rows
    a26, b26 = randn(26, 4, seed=4), randn(26, 4, seed=5)
    z = [torch.cat([nn.functional.normalize(whiten(v[s])[0]) for s in (slice(0, 9), slice(9, 18), slice(18, 26))])
         for v in (a26, b26)]
    close(wmse_loss([a26, b26], w_size=8)["loss"], (z[0] - z[1]).pow(2).sum(dim=1).mean())


# ---------------------------------------------------------------- collapse

def test_vicreg_collapse():
    z = torch.full((8, 4), 0.5)  # every sample the same
    out = vicreg_loss(z, z, eps=0.0)
    close(out["variance"], 2 * 1.0)  # gamma per branch
    close(out["covariance"], 0.0)
    close(out["invariance"], 0.0)
    close(variance(z, gamma=1.0, eps=0.0), 1.0)
    close(variance(z), 1 - math.sqrt(1e-4))  # default eps: 1 - sqrt(eps) = 0.99


def test_barlow_twins_collapse():
    # constant columns: z - mean = 0, divided by sqrt(0 + eps) -> 0, so C = 0:
    # on_diagonal = sum_i (1 - 0)^2 = D, off_diagonal = 0, loss = D
    z = torch.full((8, 4), 3.0)
    out = barlow_twins_loss(z, z)
    close(out["on_diagonal"], 4.0)
    close(out["off_diagonal"], 0.0)
    close(out["loss"], 4.0)


@pytest.mark.parametrize("n", [2, 4, 16])
def test_nt_xent_collapse(n):
    # all 2N embeddings identical: every logit is 1/tau, the positive is one of 2N - 1 equal terms
    z = torch.ones(n, 3)
    close(nt_xent_loss(z, z, temperature=0.1)["loss"], math.log(2 * n - 1))


def test_wmse_collapse_raises_or_regularizes():
    z = torch.ones(16, 2)  # exactly collapsed: the covariance is 0
    with pytest.raises(ValueError, match="not positive definite"):
        wmse_loss([z, z], w_size=8)
    # with eps: Cov + eps I = eps I, so the whitened rows are (z - mean) / sqrt(eps) = 0,
    # normalize(0) = 0 and every positive distance is 0: the regularized formula gives 0
    close(wmse_loss([z, z], w_size=8, eps=1e-4)["loss"], 0.0)


def test_wmse_rank_checks():
    z = randn(32, 8)
    with pytest.raises(ValueError, match="must exceed the embedding dim"):
        wmse_loss([z, z], w_size=8)
    with pytest.raises(ValueError, match="cannot whiten"):
        wmse_loss([z[:6], z[:6]], w_size=16)  # a batch smaller than the dim


# ---------------------------------------------------------------- parity with lightly

@pytest.fixture(scope="module")
def lightly_loss():
    pytest.importorskip("lightly")
    import lightly.loss

    return lightly.loss


def test_vicreg_matches_lightly(lightly_loss):
    # lightly averages the two branches' variance terms (0.5 * (v_a + v_b), like the official
    # code); we sum them as the paper does, so ours with mu equals lightly's with 2 * mu.
    from lightly.loss.vicreg_loss import covariance_loss, invariance_loss, variance_loss

    z_a, z_b = randn(32, 16, seed=1), randn(32, 16, seed=2) * 0.5
    out = vicreg_loss(z_a, z_b, mu_param=25.0)
    close(out["loss"], lightly_loss.VICRegLoss(mu_param=50.0)(z_a, z_b))
    close(variance(z_a), variance_loss(z_a))
    close(invariance(z_a, z_b), invariance_loss(z_a, z_b))
    close(covariance(z_a), covariance_loss(z_a))


@pytest.mark.parametrize("lambda_param", [0.0051, 1 / 16])
def test_barlow_twins_matches_lightly(lightly_loss, lambda_param):
    # lightly standardizes with F.batch_norm (biased variance, eps 1e-5) as we do; its default
    # lambda is 5e-3 (ours: the official 0.0051), so lambda is passed explicitly.
    z_a, z_b = randn(32, 16, seed=1) * 3 + 1, randn(32, 16, seed=2)
    expected = lightly_loss.BarlowTwinsLoss(lambda_param=lambda_param)(z_a, z_b)
    close(barlow_twins_loss(z_a, z_b, lambda_param=lambda_param)["loss"], expected)


@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_nt_xent_matches_lightly(lightly_loss, temperature):
    z_a, z_b = randn(16, 8, seed=1), randn(16, 8, seed=2)
    expected = lightly_loss.NTXentLoss(temperature=temperature, memory_bank_size=0)(z_a, z_b)
    close(nt_xent_loss(z_a, z_b, temperature)["loss"], expected)


def test_moco_matches_lightly_memory_bank(lightly_loss):
    # lightly's NTXentLoss with a memory bank is MoCo's InfoNCE: the positive is the other
    # view, the negatives are the bank before this batch is enqueued.
    q, k = randn(8, 16, seed=1), randn(8, 16, seed=2)
    lightly_fn = lightly_loss.NTXentLoss(temperature=0.2, memory_bank_size=(64, 16))
    queue = lightly_fn.memory_bank.bank.clone()  # (K, D) unit vectors
    close(moco_loss(q, k, queue, temperature=0.2)["loss"], lightly_fn(q, k))


def test_moco_matches_explicit_loop():
    q, k, queue = randn(6, 5, seed=1), randn(6, 5, seed=2), nn.functional.normalize(randn(10, 5, seed=3), dim=1)
    tau, total = 0.2, 0.0
    for i in range(6):
        qi, ki = q[i] / q[i].norm(), k[i] / k[i].norm()
        pos = math.exp(float(qi @ ki) / tau)
        neg = sum(math.exp(float(qi @ queue[j]) / tau) for j in range(10))
        total += -math.log(pos / (pos + neg))
    close(moco_loss(q, k, queue, tau)["loss"], total / 6)


@pytest.mark.parametrize("num_views", [2, 3])
def test_wmse_matches_lightly(lightly_loss, num_views):
    # one sub-batch (batch == w_size), so lightly's random permutation of rows does not matter;
    # lightly takes the views concatenated along the batch.
    views = [randn(32, 8, seed=s) + 0.3 * randn(32, 8, seed=10) for s in range(num_views)]
    lightly_fn = lightly_loss.WMSELoss(embedding_dim=8, w_size=32, num_samples=num_views)
    close(wmse_loss(views, w_size=32)["loss"], lightly_fn(torch.cat(views)))


# ---------------------------------------------------------------- input checks, symmetry, dtype

@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_rejects_batch_of_one(name):
    z = torch.randn(1, 4)
    with pytest.raises(ValueError, match="at least 2"):
        PAIR_LOSSES[name](z, z)


@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_rejects_mismatched_shapes(name):
    with pytest.raises(ValueError, match="differ in shape"):
        PAIR_LOSSES[name](torch.randn(16, 4), torch.randn(16, 5))


@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_rejects_non_2d(name):
    z = torch.randn(16, 4, 1)
    with pytest.raises(ValueError, match="2-D"):
        PAIR_LOSSES[name](z, z)


def test_moco_and_wmse_input_checks():
    q = torch.randn(4, 8)
    with pytest.raises(ValueError, match="differ in shape"):
        moco_loss(q, torch.randn(4, 7), torch.randn(10, 8))
    with pytest.raises(ValueError, match="queue dim"):
        moco_loss(q, q, torch.randn(10, 7))
    with pytest.raises(ValueError, match="at least 2 views"):
        wmse_loss([q], w_size=16)


@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_symmetric_in_the_views(name):
    z_a, z_b = randn(16, 4, seed=1), randn(16, 4, seed=2)
    close(PAIR_LOSSES[name](z_a, z_b)["loss"], PAIR_LOSSES[name](z_b, z_a)["loss"])


@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_float32_under_autocast(name):
    # the losses disable autocast: under bf16 autocast the value is the float32 one
    z_a, z_b = randn(16, 4, seed=1), randn(16, 4, seed=2)
    expected = PAIR_LOSSES[name](z_a, z_b)["loss"]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = PAIR_LOSSES[name](z_a, z_b)
    assert all(v.dtype == torch.float32 for v in out.values())
    close(out["loss"], expected, tol=1e-6)


@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_half_inputs_are_widened_and_float64_is_kept(name):
    # bf16 embeddings are computed on in float32; float64 ones stay float64 (the distributed parity test needs it)
    z_a, z_b = randn(16, 4, seed=1), randn(16, 4, seed=2)
    half = PAIR_LOSSES[name](z_a.bfloat16(), z_b.bfloat16())
    assert half["loss"].dtype == torch.float32
    close(half["loss"], PAIR_LOSSES[name](z_a.bfloat16().float(), z_b.bfloat16().float())["loss"], tol=1e-6)
    double = PAIR_LOSSES[name](z_a.double(), z_b.double())
    assert all(v.dtype == torch.float64 for v in double.values())
    close(double["loss"].float(), PAIR_LOSSES[name](z_a, z_b)["loss"], tol=1e-5)


def test_terms_are_detached_and_loss_backpropagates():
    z_a, z_b = randn(16, 4, seed=1).requires_grad_(), randn(16, 4, seed=2).requires_grad_()
    for name, fn in PAIR_LOSSES.items():
        out = fn(z_a, z_b)
        assert all(not v.requires_grad for key, v in out.items() if key != "loss"), name
        (grad_a,) = torch.autograd.grad(out["loss"], z_a)
        assert torch.isfinite(grad_a).all() and grad_a.abs().sum() > 0, name


def test_modules_match_functions():
    z_a, z_b = randn(16, 4, seed=1), randn(16, 4, seed=2)
    close(VICRegLoss()(z_a, z_b)["loss"], vicreg_loss(z_a, z_b)["loss"])
    close(BarlowTwinsLoss(lambda_param=0.1)(z_a, z_b)["loss"], barlow_twins_loss(z_a, z_b, 0.1)["loss"])
    close(NTXentLoss(0.2)(z_a, z_b)["loss"], nt_xent_loss(z_a, z_b, 0.2)["loss"])
    close(WMSELoss(w_size=8)(z_a, z_b)["loss"], wmse_loss([z_a, z_b], w_size=8)["loss"])
    close(WMSELoss(w_size=8)([z_a, z_b])["loss"], wmse_loss([z_a, z_b], w_size=8)["loss"])


# ---------------------------------------------------------------- MoCo machinery

def test_queue_wraps_around_and_keeps_newest():
    queue = MoCoQueue(size=5, dim=2)
    queue.enqueue(T([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]]))  # slots 0, 1, 2
    assert int(queue.ptr) == 3
    queue.enqueue(T([[0.0, -1.0], [4.0, 3.0], [-3.0, 4.0], [0.6, -0.8]]))  # slots 3, 4, then 0, 1
    assert int(queue.ptr) == (3 + 4) % 5
    # the 5 newest keys, normalized: slot 2 is the oldest survivor (-3, 0) -> (-1, 0)
    close(queue.keys, T([[-0.6, 0.8], [0.6, -0.8], [-1.0, 0.0], [0.0, -1.0], [0.8, 0.6]]))
    # a batch of 7 > 5 keeps its newest 5 (rows 2..6), written from ptr = 2 on: slots 2, 3, 4, 0, 1
    angles = 0.3 * torch.arange(7.0)
    big = torch.stack([angles.cos(), angles.sin()], dim=1)
    queue.enqueue(big)
    close(queue.keys, big[[5, 6, 2, 3, 4]])
    assert int(queue.ptr) == 2


def test_queue_receives_no_gradient_and_allows_enqueue_before_backward():
    queue = MoCoQueue(size=16, dim=4)
    q, k = randn(8, 4, seed=1).requires_grad_(), randn(8, 4, seed=2).requires_grad_()
    out = moco_loss(q, k, queue.keys)
    queue.enqueue(k)  # in place, before backward: the loss used a clone
    out["loss"].backward()
    assert not queue.keys.requires_grad and queue.keys.grad is None
    assert k.grad is None  # keys come from the momentum encoder: no gradient
    assert q.grad is not None and torch.isfinite(q.grad).all()
    assert {name for name, _ in queue.named_buffers()} == {"keys", "ptr"}


def test_momentum_update():
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    online(torch.randn(8, 3))  # move the running statistics away from their init
    target = copy.deepcopy(online)
    for p in target.parameters():
        nn.init.normal_(p)
    target[1].running_mean.zero_()
    before = [p.clone() for p in target.parameters()]

    momentum_update(online, target, m=1.0)  # keeps the parameters ...
    for p, b in zip(target.parameters(), before):
        close(p, b)
    close(target[1].running_mean, online[1].running_mean)  # ... but copies the buffers

    momentum_update(online, target, m=0.9)
    for p, b, o in zip(target.parameters(), before, online.parameters()):
        close(p, 0.9 * b + 0.1 * o)

    momentum_update(online, target, m=0.0)  # copies
    for p, o in zip(target.parameters(), online.parameters()):
        close(p, o)

    with pytest.raises(ValueError, match="differ in structure"):
        momentum_update(online, nn.Linear(3, 4), m=0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        momentum_update(online, target, m=1.5)
