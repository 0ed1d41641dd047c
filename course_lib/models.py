"""Encoders (N1, N2 = the coursework's ResNet-18, ResNet-18 with the CIFAR stem) and the VICReg projector.

Introduced in notebook 01 (supervised baseline) and used by every later notebook.
"""
from __future__ import annotations

import torch
from torch import nn

from .errors import CourseError


class BasicBlock(nn.Module):
    """ResNet's two-convolution residual block: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``.

    The shortcut is the identity, or ``downsample`` (a strided 1x1 convolution + BatchNorm) where the block
    halves the map or widens the channels. Names and order follow torchvision's ``BasicBlock``, so a
    torchvision ResNet-18's ``state_dict`` loads into ours and back.
    """

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class _ResNet18(nn.Module):
    """ResNet-18 (He et al., 2016) laid out as torchvision's ``resnet18(weights=None)``, untrained.

    A 7x7 stride-2 stem, a 3x3 stride-2 max-pool, four stages of two :class:`BasicBlock` (64, 128, 256,
    512 channels; stages 2-4 halve the map), a global average pool and a 1000-way ``fc``. The same
    parameter names, the same modules built in the same order and the same initialisation (He-normal
    convolutions, BatchNorm at 1 and 0), so under one seed it draws torchvision's very weights
    (tests/test_core.py checks both). Written here rather than imported: ``import torchvision`` pulls
    in ``torch._dynamo`` and adds ~9 s to every process that builds a ResNet on a 2-core CPU (each notebook's
    kernel, each test's subprocess).
    """

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self._width = 64
        self.layer1 = self._stage(64, 1)
        self.layer2 = self._stage(128, 2)
        self.layer3 = self._stage(256, 2)
        self.layer4 = self._stage(512, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _stage(self, planes: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._width != planes:
            downsample = nn.Sequential(nn.Conv2d(self._width, planes, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes))
        first = BasicBlock(self._width, planes, stride, downsample)
        self._width = planes
        return nn.Sequential(first, BasicBlock(planes, planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _resnet18() -> nn.Module:
    """ResNet-18 as torchvision's ``resnet18(weights=None)`` builds it (see :class:`_ResNet18`)."""
    return _ResNet18()


#: The coursework's parameter count for N1 *with* its 10-class linear head.
N1_COURSEWORK_PARAMS = 403_530


class N1(nn.Module):
    """The coursework's five-layer CNN, reconstructed (its figure is lost).

    Five 3x3 convolutions 3->32->64->64->128->192 with ReLU; a 2x2 max-pool after
    convolutions 1, 3 and 4 while the map is at least 4 px wide (32 px: the convolutions
    see 32-16-16-8-4; 16 px: 16-8-8-4-2; 8 px: 8-4-4-2-2); global average pooling, then
    Linear(192, 256). About 23 M multiply-adds per 32 px image. The pooling layout is our
    choice: among seven candidates, the most accurate on a validation split of CIFAR-10's
    training images that keeps the benchmark's ratio above 2 (README, "Real data"). With a 10-class linear head
    and ``batch_norm=False`` this has exactly 403,530 parameters, the count the
    coursework reports (pooling has no parameters); the default adds BatchNorm after each convolution
    (+960 parameters), which makes SSL pretraining far less sensitive to the
    learning rate.

    Example:
        >>> N1()(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 256])
    """

    widths = (32, 64, 64, 128, 192)
    pool_after = (0, 2, 3)  # 0-based indices of the convolutions followed by a 2x2 max-pool
    out_dim = 256
    channels_last_on_cpu = True  # faster on a CPU in fp32 too (~1.25x on 2 cores; runtime.memory_format)

    def __init__(self, in_channels: int = 3, batch_norm: bool = True):
        super().__init__()
        blocks: list[nn.Module] = []
        c_in = in_channels
        for c_out in self.widths:
            layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1)]
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.ReLU(inplace=True))
            blocks.append(nn.Sequential(*layers))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, self.out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.pool_after and x.shape[-1] >= 4:
                x = nn.functional.max_pool2d(x, 2)
        return self.fc(self.pool(x).flatten(1))


class ResNet18(nn.Module):
    """ResNet-18 with the CIFAR stem (3x3 first conv, stride 1, no max-pool); 512-d output."""

    out_dim = 512

    def __init__(self, in_channels: int = 3):
        super().__init__()
        net = _resnet18()
        net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
        net.fc = nn.Identity()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


#: The coursework's parameter count for N2 (section 5.1): torchvision's ResNet-18 with its 1000-way ``fc``.
N2_COURSEWORK_PARAMS = 11_681_896


class N2(nn.Module):
    """ResNet-18 as the coursework built it: "a first convolution with 64 filters and a MaxPooling layer".

    torchvision's ``resnet18()`` with ``conv1`` replaced by ``Conv2d(3, 64, 3, stride=1, padding=1)``
    (bias on, PyTorch's default) and the stem's 3x3 stride-2 max-pool *kept*. With torchvision's
    1000-way ``fc`` still attached that is exactly 11,681,896 parameters, the coursework's count:
    11,689,512 - 64 * 3 * (7 * 7 - 3 * 3) + 64. The count pins the kernel (3x3) and the bias; it does not
    pin the stride, and we take stride 1, the usual choice for a 3x3 stem. The embedding is the 512-d
    output of the global average pool (``fc`` replaced by the identity): 11,168,896 parameters.

    On a 32 px image the max-pool halves the map before the first block, so the four stages run at
    16, 8, 4 and 2 px (the CIFAR stem of :class:`ResNet18`: 32, 16, 8, 4) and each image costs about a
    quarter of the multiply-adds: it trains ~2.4x faster per image on a CPU, and sees coarser detail.

    Example:
        >>> N2()(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 512])
    """

    out_dim = 512

    def __init__(self, in_channels: int = 3, head: int | None = None):
        super().__init__()
        net = _resnet18()
        net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1)
        net.fc = nn.Linear(512, head) if head else nn.Identity()  # head=1000: the coursework's counted model
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


ENCODERS = {"N1": N1, "N2": N2, "ResNet-18": ResNet18}
#: What a report calls each encoder.
ENCODER_TITLES = {"N1": "N1 (five conv layers)", "N2": "N2 (ResNet-18, coursework)",
                  "ResNet-18": "ResNet-18 (CIFAR stem)"}
#: Bumped when an encoder's layout changes, so that runs trained with the old one are not reused.
ENCODER_REVISIONS = {"N1": 3, "N2": 1, "ResNet-18": 1}


def build_encoder(name: str) -> nn.Module:
    """Build an encoder by its report name, ``"N1"`` or ``"ResNet-18"``."""
    try:
        return ENCODERS[name]()
    except KeyError:
        raise CourseError(
            f"unknown encoder {name!r}: use one of {', '.join(ENCODERS)}"
        ) from None


class Projector(nn.Sequential):
    """VICReg's expander: Linear layers with BatchNorm + ReLU between them.

    ``Projector(256, (1024, 1024, 1024))`` is the coursework's three Linear(1024)
    layers. As in the official VICReg code, the last Linear has neither BatchNorm nor bias.
    """

    def __init__(self, in_dim: int, widths: tuple[int, ...] = (1024, 1024, 1024)):
        layers: list[nn.Module] = []
        dims = (in_dim, *widths)
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            last = i == len(widths) - 1
            layers.append(nn.Linear(a, b, bias=not last))
            if not last:
                layers += [nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
        super().__init__(*layers)
        self.out_dim = dims[-1]


class Pixels(nn.Flatten):
    """The "no encoder" baseline: the flattened pixels as the embedding."""

    out_dim = None


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
