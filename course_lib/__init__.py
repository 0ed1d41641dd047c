"""course_lib: the small library behind the self-supervised representation learning course.

One module per concept, each importing only from the layers below it (tests/test_layers.py):

- entry points: ``run`` (every notebook through papermill), ``pretrain`` (one pretraining, torchrun-ready), ``colab``
- the report: ``plots``, ``report`` (results.md), ``claims`` (the coursework's claims, checked), ``results`` (rows
  and their files), ``narrate`` (sentences from numbers)
- evaluation and training: ``evaluate`` (linear probe, fine-tuning), ``train`` (the training loop),
  ``diagnostics`` (collapse: std, effective rank, kNN), ``runs`` (a run's folder, key, checkpoint and caches)
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


def short_course_errors(shell) -> None:
    """Make an IPython ``shell`` show a :class:`CourseError` as its one line (``CourseError: ... fix``) instead of a
    deep traceback. It stays an error output, so papermill and nbval still see the cell fail.

    Installed on the running notebook's shell when ``course_lib`` is imported there (a plain Python process has
    none, and nothing happens); only IPython's public ``set_custom_exc`` and ``showtraceback`` are used.
    """
    def handler(shell, etype, evalue, tb, tb_offset=None):
        shell.showtraceback((etype, evalue, tb), tb_offset=tb_offset, exception_only=True)

    shell.set_custom_exc((CourseError,), handler)


def _running_shell():
    try:
        return get_ipython()  # type: ignore[name-defined]  # noqa: F821
    except NameError:
        return None


if _running_shell() is not None:
    short_course_errors(_running_shell())
