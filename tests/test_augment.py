"""Value checks of the batched augmentation (course_lib.augment): each step, the crop, the "ssl" views."""
import pytest
import torch

from course_lib import augment as A


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def images() -> torch.Tensor:
    """A small batch of random images in [0, 1], B x 3 x H x W."""
    return torch.rand(6, 3, 16, 16, generator=gen(123))


STEPS = [
    A.ColorJitter(),
    A.ColorJitter(p=1.0),
    A.RandomGrayscale(p=0.5),
    A.GaussianBlur(p=1.0),
    A.GaussianBlur(p=0.5),
    A.Solarize(p=0.5),
]


@pytest.mark.parametrize("step", STEPS, ids=repr)
def test_step_keeps_shape_dtype_and_range(step, images):
    out = step(images, gen())
    assert out.shape == images.shape and out.dtype == images.dtype
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(images, torch.rand(6, 3, 16, 16, generator=gen(123)))  # the input is left alone


@pytest.mark.parametrize("step", [A.ColorJitter(p=0.0), A.RandomGrayscale(p=0.0), A.GaussianBlur(p=0.0), A.Solarize(p=0.0)],
                         ids=repr)
def test_step_with_p0_is_the_identity(step, images):
    torch.testing.assert_close(step(images, gen()), images)


def test_grayscale_p1_gives_itu601_luma_in_every_channel():
    x = torch.tensor([1.0, 0.5, 0.25]).view(1, 3, 1, 1).expand(2, 3, 2, 2).contiguous()
    out = A.RandomGrayscale(p=1.0)(x, gen())
    luma = 0.299 * 1.0 + 0.587 * 0.5 + 0.114 * 0.25
    torch.testing.assert_close(out, torch.full_like(x, luma))


def test_solarize_inverts_at_and_above_the_threshold():
    x = torch.tensor([0.0, 0.25, 0.49, 0.5, 0.51, 0.75, 1.0]).view(1, 1, 1, 7).expand(2, 3, 1, 7)
    out = A.Solarize(p=1.0, threshold=0.5)(x, gen())
    want = torch.tensor([0.0, 0.25, 0.49, 0.5, 0.49, 0.25, 0.0]).view(1, 1, 1, 7).expand(2, 3, 1, 7)
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(A.solarize(x, 0.5), want)


def test_blur_with_tiny_sigma_is_the_identity(images):
    out = A.GaussianBlur(p=1.0, sigma=(1e-3, 1e-3))(images, gen())
    torch.testing.assert_close(out, images)


def test_blur_keeps_a_constant_image_and_smooths_a_noisy_one(images):
    flat = torch.full((3, 3, 16, 16), 0.3)
    sigma = torch.tensor([0.1, 1.0, 2.0])
    torch.testing.assert_close(A.gaussian_blur(flat, sigma, kernel_size=5), flat)
    out = A.gaussian_blur(images, torch.full((6,), 2.0), kernel_size=5)
    assert out.std() < images.std()
    torch.testing.assert_close(out.mean(), images.mean(), atol=0.01, rtol=0)


def test_blur_matches_torchvision_for_one_sigma(images):
    from torchvision.transforms.v2.functional import gaussian_blur

    ours = A.gaussian_blur(images, torch.full((6,), 1.3), kernel_size=3)
    torch.testing.assert_close(ours, gaussian_blur(images, [3, 3], [1.3, 1.3]))


def test_blur_kernel_is_about_a_tenth_of_the_side_and_odd():
    assert [A.blur_kernel_size(s) for s in (8, 32, 64, 96, 224)] == [3, 3, 7, 9, 23]


def test_jitter_factors_match_torchvision(images):
    from torchvision.transforms.v2 import functional as TF

    f = torch.tensor([0.6, 0.8, 1.0, 1.1, 1.3, 1.4])
    for ours, theirs in ((A.adjust_brightness, TF.adjust_brightness), (A.adjust_contrast, TF.adjust_contrast),
                         (A.adjust_saturation, TF.adjust_saturation)):
        want = torch.stack([theirs(images[i], f[i].item()) for i in range(6)])
        # torchvision's luma uses 0.2989 for red where ITU-R 601 says 0.299
        torch.testing.assert_close(ours(images, f), want, atol=1e-3, rtol=0)


def test_hue_rotation_keeps_luma_and_turns_red_towards_green():
    red = torch.tensor([0.8, 0.2, 0.2]).view(1, 3, 1, 1)
    turned = A.adjust_hue(red, torch.tensor([0.1]))
    assert turned[0, 1] > red[0, 1]  # green rises, as with torchvision's HSV shift
    torch.testing.assert_close(A.adjust_hue(red, torch.tensor([0.0])), red)
    m = A.saturation_hue_matrix(torch.tensor([1.0]), torch.tensor([0.1]))
    torch.testing.assert_close(torch.tensor(A.LUMA) @ m[0], torch.tensor(A.LUMA))  # luma unchanged before clamping


def test_crop_of_the_whole_image_is_the_identity_and_flip_mirrors():
    x = torch.rand(4, 3, 12, 12, generator=gen(1))
    same = A.random_resized_crop_flip(x, 12, gen(), scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=0.0)
    torch.testing.assert_close(same, x)
    mirrored = A.random_resized_crop_flip(x, 12, gen(), scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=1.0)
    torch.testing.assert_close(mirrored, x.flip(-1))


def test_crop_resizes_and_stays_in_range():
    x = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8, generator=gen(2))
    out = A.random_resized_crop_flip(A.to_float(x), 8, gen())
    assert out.shape == (5, 3, 8, 8) and out.min() >= 0 and out.max() <= 1


def uint8_batch(n: int = 8, size: int = 16, seed: int = 3) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=gen(seed))


def test_ssl_views_shape_dtype_range_and_asymmetry():
    views = A.build_views("ssl", 16, (0.08, 1.0))
    a, b = views(uint8_batch(), gen())
    for v in (a, b):
        assert v.shape == (8, 3, 16, 16) and v.dtype == torch.float32
        assert v.min() >= -1 and v.max() <= 1
    first = {type(s).__name__: s for s in views.first.steps}
    second = {type(s).__name__: s for s in views.second.steps}
    assert (first["GaussianBlur"].p, first["Solarize"].p) == (1.0, 0.0)
    assert (second["GaussianBlur"].p, second["Solarize"].p) == (0.1, 0.2)
    assert first["ColorJitter"] == second["ColorJitter"] == A.ColorJitter(0.4, 0.4, 0.2, 0.1, p=0.8)
    assert first["RandomGrayscale"].p == second["RandomGrayscale"].p == 0.2


def test_ssl_cifar_views_are_solo_learns_cifar_recipe():
    views = A.build_views("ssl-cifar", 16, (0.2, 1.0))
    for view in (views.first, views.second):
        steps = {type(s).__name__: s for s in view.steps}
        assert (steps["GaussianBlur"].p, steps["Solarize"].p) == (0.0, 0.1)
        assert steps["ColorJitter"] == A.ColorJitter(0.4, 0.4, 0.2, 0.1, p=0.8)
        assert steps["RandomGrayscale"].p == 0.2 and view.scale == (0.2, 1.0)
    x = A.to_float(uint8_batch())
    assert torch.equal(A.GaussianBlur(p=0.0)(x, gen()), x)  # p 0: no image is blurred


def test_registry_keeps_crop_flip_and_adds_ssl():
    assert set(A.AUGMENTATIONS) >= {"crop-flip", "ssl"}
    crop_flip = A.build_views("crop-flip", 16, (0.08, 1.0))
    assert crop_flip.first.steps == () and crop_flip.first is crop_flip.second


@pytest.mark.parametrize("name", ["crop-flip", "ssl", "ssl-cifar"])
def test_same_seed_same_views_other_seed_other_views(name):
    views, x = A.build_views(name, 16, (0.08, 1.0)), uint8_batch()
    a1, b1 = views(x, gen(7))
    a2, b2 = views(x, gen(7))
    assert torch.equal(a1, a2) and torch.equal(b1, b2)
    a3, _ = views(x, gen(8))
    assert not torch.equal(a1, a3)
    assert not torch.equal(a1, b1)  # the two views of a pair differ


@pytest.mark.parametrize("name", ["crop-flip", "ssl", "ssl-cifar"])
def test_samples_of_a_batch_get_different_crops(name):
    one = uint8_batch(n=1)
    a, _ = A.build_views(name, 16, (0.08, 1.0))(one.expand(8, -1, -1, -1), gen())
    flat = a.flatten(1)
    assert all(not torch.equal(flat[i], flat[j]) for i in range(8) for j in range(i + 1, 8))


def test_every_step_draws_only_from_the_generator(images):
    """The global RNG neither feeds nor is consumed by a step."""
    views = A.build_views("ssl", 16, (0.08, 1.0))
    torch.manual_seed(0)
    a, _ = views(uint8_batch(), gen(5))
    after = torch.rand(1)
    torch.manual_seed(1)
    b, _ = views(uint8_batch(), gen(5))
    assert torch.equal(a, b)
    torch.manual_seed(0)
    assert torch.equal(torch.rand(1), after)
