"""course_lib: the small library behind the self-supervised representation learning course.

One module per concept: ``config`` (presets), ``data``, ``augment``, ``models``,
``losses``, ``train``, ``evaluate``, ``plots``, ``report``, ``run`` (papermill batch).
"""
from .config import Config, resolve
from .errors import CourseError

__version__ = "0.1.0"
__all__ = ["Config", "CourseError", "resolve", "__version__"]
