"""The one shape every dataset takes: :class:`ImageDataset`, uint8 images and int64 labels.

The bottom of the data layer: :mod:`course_lib.data` (the digits, the registry of datasets,
subsets and batches) and :mod:`course_lib.realdata` (CIFAR-10, Tiny ImageNet, image
folders) both build their datasets with :func:`as_dataset`, and import nothing from each
other but this.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch


@dataclass(frozen=True)
class ImageDataset:
    """A labelled dataset with a train and a test split, images as uint8 NCHW."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]
    class_names: tuple[str, ...] | None = None  # readable names for plots (Tiny ImageNet: words for the wnids)

    @property
    def names(self) -> tuple[str, ...]:
        """The classes as a reader wants them in a legend."""
        return self.class_names or self.classes

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[-1])

    def to(self, device: torch.device | str) -> "ImageDataset":
        """The same dataset with every tensor moved to ``device`` (one copy, up front)."""
        return replace(
            self,
            x_train=self.x_train.to(device),
            y_train=self.y_train.to(device),
            x_test=self.x_test.to(device),
            y_test=self.y_test.to(device),
        )

    def __repr__(self) -> str:
        return (
            f"ImageDataset({self.name!r}, train={len(self.y_train)}, test={len(self.y_test)}, "
            f"classes={self.num_classes}, size={self.image_size}px)"
        )


def as_dataset(name, x_tr, y_tr, x_te, y_te, classes) -> ImageDataset:
    return ImageDataset(
        name=name,
        x_train=torch.as_tensor(x_tr, dtype=torch.uint8).contiguous(),
        y_train=torch.as_tensor(y_tr, dtype=torch.int64),
        x_test=torch.as_tensor(x_te, dtype=torch.uint8).contiguous(),
        y_test=torch.as_tensor(y_te, dtype=torch.int64),
        classes=tuple(classes),
    )
