"""Every notebook teaches: learning goals, generated result sentences, exercises with hidden answers.

These tests read the committed notebooks (no execution). The last one guards the course's rule that no
measured result is typed into prose: a percentage with decimals in a Markdown cell must be one of the
coursework's or the literature's published numbers (``course_lib.report``); this run's numbers are said
by code (``course_lib.narrate.say``), so they stay true on every preset and dataset.
"""
import re
from pathlib import Path

import nbformat
import pytest

from course_lib import report

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXERCISE = re.compile(r"^\*\*Exercise (\d\d)\.(\d+) · [^*]+[.?]\*\*")
ANSWER = re.compile(r"<details><summary>Answer</summary>\s*\n(.+?)\n\s*</details>\s*$", re.S)
DECIMAL_PERCENT = re.compile(r"(?<![\d.])(\d{1,3}\.\d{1,2})\s?%")


def _cells(path):
    return nbformat.read(path, as_version=4).cells


def _published() -> set[str]:
    """The decimals that prose may state: the coursework's results and the literature's."""
    numbers = {f"{v:.1f}" for pair in report.COURSEWORK.values() for v in pair}
    for text, _ in report.LITERATURE.values():
        numbers |= set(re.findall(r"\d+\.\d+", text))
    return numbers


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_learning_goals_follow_the_title(path):
    markdown = [c.source for c in _cells(path) if c.cell_type == "markdown"]
    title = next(i for i, s in enumerate(markdown) if s.startswith(f"# {path.name[:2]} · "))
    goals = markdown[title + 1]
    assert goals.startswith("## Learning goals"), f"{path.name}: the cell after the title must be the learning goals"
    assert 3 <= goals.count("\n- ") <= 6, f"{path.name}: 3-6 learning goals"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_close_the_notebook_with_hidden_answers(path):
    cells = _cells(path)
    start = max(i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith("## Exercises"))
    exercises = cells[start + 1:]
    assert 3 <= len(exercises) <= 5, f"{path.name}: 3-5 exercises after '## Exercises'"
    for k, cell in enumerate(exercises, 1):
        head = EXERCISE.match(cell.source)
        assert cell.cell_type == "markdown" and head, f"{path.name}: exercise {k} must start '**Exercise NN.k · Title.**'"
        assert head.groups() == (path.name[:2], str(k)), f"{path.name}: exercises numbered {path.name[:2]}.1, .2, ..."
        answer = ANSWER.search(cell.source)
        assert answer and len(answer.group(1).split()) >= 15, f"{path.name} {head.group(0)}: a hidden answer of substance"
        assert cell.source.index("<details>") > len(head.group(0)) + 40, f"{path.name}: the task comes before its answer"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_results_are_said_by_code_not_typed(path):
    cells = _cells(path)
    assert any("say(" in c.source for c in cells if c.cell_type == "code"), \
        f"{path.name}: state this run's results with course_lib.narrate.say"
    typed = {n for c in cells if c.cell_type == "markdown"
             for n in DECIMAL_PERCENT.findall(c.source.split("## Exercises")[0])} - _published()
    assert not typed, f"{path.name}: measured numbers typed into Markdown ({sorted(typed)}): generate them with say()"


def test_the_guards_can_fail():
    """The patterns catch what they are for (a typed result, a numbered exercise, an answer block)."""
    assert DECIMAL_PERCENT.findall("N1 reaches 68.0 % and 64.8% in the coursework; 0.5 is a temperature") == ["68.0", "64.8"]
    assert {"64.8", "92.07", "52.3"} <= _published() and "68.0" not in _published()
    cell = "**Exercise 02.1 · No variance term.** Set the weight to 0.\n\n<details><summary>Answer</summary>\n\nIt collapses.\n\n</details>"
    assert EXERCISE.match(cell).groups() == ("02", "1") and ANSWER.search(cell).group(1).strip() == "It collapses."
