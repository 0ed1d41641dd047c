"""Sentences generated from a run's numbers, so that the prose stays true on every preset and dataset.

Introduced in notebook 01. A notebook never types a measured result into its Markdown: it computes the
number, then says it with :func:`say`, built from the small helpers here (a percentage, a difference in
points with its direction, a ranking). The helpers decide the *words* from the numbers too: "higher" or
"lower", "about the same" within a tolerance, "beats" or "does not beat". Each helper is a pure function
of its arguments (tested on hand examples in ``tests/test_narrate.py``).
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping


def say(text: str) -> None:
    """Show ``text`` as Markdown in a notebook (and in the course's website); print it anywhere else."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - IPython ships with every notebook install
        print(text)
        return
    if get_ipython() is None:
        print(text)
    else:
        display(Markdown(text))


def pct(value: float, digits: int = 1) -> str:
    """``68.04`` -> ``"68.0 %"`` (values are percentages already, as in the report's tables)."""
    return f"{value:.{digits}f} %"


def listing(items: Iterable[str], conjunction: str = "and") -> str:
    """``["a", "b", "c"]`` -> ``"a, b and c"``."""
    items = [str(i) for i in items]
    if not items:
        return "none"
    if len(items) == 1:
        return items[0]
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def points(a: float, b: float, tol: float = 0.5, more: str = "higher", less: str = "lower",
           same: str = "about the same as", than: str = "than", digits: int = 1) -> str:
    """How ``a`` compares with ``b``, both percentages: ``"3.2 points higher than"``.

    Within ``tol`` points the words are ``same`` (with the difference in brackets), so that a
    sentence never calls noise a win.
    """
    diff = a - b
    if abs(diff) <= tol:
        return f"{same} (a difference of {abs(diff):.{digits}f} points)"
    word = more if diff > 0 else less
    return f"{abs(diff):.{digits}f} points {word} {than}"


def ratio(a: float, b: float, digits: int = 1) -> str:
    """``ratio(30, 10)`` -> ``"3.0x"``; ``"n/a"`` when ``b`` is zero."""
    return f"{a / b:.{digits}f}x" if b else "n/a"


def ranking(scores: Mapping[str, float], fmt=pct, descending: bool = True) -> str:
    """``{"a": 50, "b": 60}`` -> ``"b (60.0 %), then a (50.0 %)"``, best first."""
    order = sorted(scores.items(), key=lambda kv: kv[1], reverse=descending)
    parts = [f"{name} ({fmt(value)})" for name, value in order]
    return parts[0] if len(parts) == 1 else ", then ".join([", ".join(parts[:-1]), parts[-1]])


def spread(values: Iterable[float]) -> float:
    """The range (max - min) of a few values, in their unit: the cheapest honest noise estimate."""
    values = list(values)
    return max(values) - min(values) if values else 0.0


def chance(classes: int) -> float:
    """Top-1 accuracy of guessing among ``classes`` balanced classes, in %."""
    return 100.0 / classes


def choose(condition: bool, yes: str | Callable[[], str], no: str | Callable[[], str]) -> str:
    """The words that are true: ``yes`` when ``condition`` holds, else ``no``.

    A text passed as a string is built before the choice; pass a function (``lambda: f"..."``) where a text can
    only be built when its condition holds (it indexes something that may be empty): only the chosen one is called.

    Example:
        >>> items = []
        >>> choose(bool(items), lambda: f"the first is {items[0]}", "there are none")
        'there are none'
    """
    chosen = yes if condition else no
    return chosen() if callable(chosen) else chosen
