"""course_lib: the small library behind the self-supervised representation learning course.

One module per concept, each importing only from the layers below it (tests/test_layers.py):

- entry points: ``run`` (every notebook through papermill), ``pretrain`` (one pretraining, torchrun-ready), ``colab``
- the report: ``plots``, ``report``, ``narrate`` (sentences from numbers)
- evaluation and training: ``evaluate`` (linear probe, fine-tuning), ``train`` (the training loop),
  ``diagnostics`` (collapse: std, effective rank, kNN)
- methods: ``methods`` (an encoder's heads + a loss), ``distributed`` (torchrun, DDP, gather, SyncBatchNorm),
  ``runtime`` (device, precision, embeddings)
- data and models: ``data`` (the registry, digits, subsets, batches), ``realdata`` (CIFAR-10, Tiny ImageNet,
  image folders), ``images`` (ImageDataset), ``models``, ``losses``, ``augment``
- ``config`` (presets and settings) and ``errors`` at the bottom.
"""
from .config import Config, resolve
from .errors import CourseError

__version__ = "0.1.0"
__all__ = ["Config", "CourseError", "resolve", "__version__"]


def _short_course_errors() -> None:
    """In a notebook, show a CourseError as its one-line message instead of a deep traceback.

    It still is an error output, so papermill and nbval see the cell fail.
    """
    try:
        shell = get_ipython()  # type: ignore[name-defined]  # noqa: F821
    except NameError:
        return

    def handler(shell, etype, evalue, tb, tb_offset=None):
        shell._showtraceback(etype, evalue, [f"{etype.__name__}: {evalue}"])

    shell.set_custom_exc((CourseError,), handler)


_short_course_errors()
