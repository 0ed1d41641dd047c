"""When is a difference between two accuracies more than noise? One rule for the whole course.

Every notebook, the report's claims and the studies call :func:`tolerance` and :func:`verdict`:

* **the test split**: an accuracy near 50 % measured on ``n`` test images has a standard error of
  ``100 * sqrt(0.25 / n) = 50 / sqrt(n)`` points; two of them count as different when they are more than two
  standard errors apart, ``100 / sqrt(n)`` (226 test images, the digits' set A: 6.7 points; CIFAR-10's 10,000:
  1.0);
* **the seeds**, where a result is a mean over seeds: two standard errors of the difference of two means,
  ``2 * sqrt((s_a^2 + s_b^2) / seeds)`` for seed-to-seed standard deviations ``s_a`` and ``s_b``;
* the larger of the two, and never below ``floor`` (1 point: a short run's seed-to-seed variation is about a
  point even on a large test split); ``unknown`` (2 points) when the test split's size is not known.

A difference larger than the tolerance is "beyond noise"; anything else is "within noise", and no sentence of
the course may call it a gain or a loss.
"""
from __future__ import annotations

import math

FLOOR = 1.0
UNKNOWN = 2.0


def tolerance(test_images: int | None, seed_stds: tuple[float, float] | None = None, seeds: int = 1,
              floor: float = FLOOR, unknown: float = UNKNOWN) -> float:
    """Points within which two top-1 accuracies count as "about the same" (the module's rule).

    Example:
        >>> round(tolerance(226), 1), tolerance(10_000), tolerance(None)
        (6.7, 1.0, 2.0)
        >>> tolerance(10_000, seed_stds=(1.5, 2.0), seeds=3)  # the seeds' term dominates: 2 * sqrt(6.25 / 3)
        2.886751345948129
    """
    split = unknown if not test_images else 100.0 / math.sqrt(float(test_images))
    seed_term = 0.0
    if seed_stds is not None:
        var = sum(0.0 if s is None or s != s else float(s) ** 2 for s in seed_stds)  # NaN / None: one seed
        seed_term = 2.0 * math.sqrt(var / max(seeds, 1))
    return max(floor, split, seed_term)


def verdict(a: float, b: float, tol: float) -> str:
    """``"higher"``, ``"lower"`` or ``"same"``: ``a`` against ``b``, both in points, with a tolerance ``tol``.

    Example:
        >>> verdict(52.0, 50.0, 1.0), verdict(52.0, 50.0, 2.0), verdict(47.0, 50.0, 2.0)
        ('higher', 'same', 'lower')
    """
    diff = a - b
    if abs(diff) <= tol:
        return "same"
    return "higher" if diff > 0 else "lower"


def beyond(a: float, b: float, tol: float) -> bool:
    """True when ``a`` and ``b`` differ by more than ``tol`` points (:func:`verdict` is not "same")."""
    return verdict(a, b, tol) != "same"
