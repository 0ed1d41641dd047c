"""course_lib: the small library behind the self-supervised representation learning course.

One module per concept: ``config`` (presets), ``data`` and ``realdata``, ``augment``,
``models``, ``losses``, ``methods``, ``train``, ``evaluate``, ``plots``, ``report``,
``run`` (the papermill batch run).
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
