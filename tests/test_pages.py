"""The pages a student reads agree with the report: the committed notebooks carry the outputs of one run
(`make report` or a real-data run, stored by `make notebooks FROM=...`), each page names that run in its first
lines, and the numbers a page prints are the ones in that run's committed results.csv."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from course_lib import report
from course_lib.config import PRESETS, resolve
from course_lib.run import notebook_list

ROOT = Path(__file__).resolve().parents[1]
PAGE_LINE = re.compile(r"\*\*This page was produced by\*\* preset `([^`]+)`")


def outputs_text(cell: dict) -> str:
    parts = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            parts.append("".join(o.get("text", "")))
        for kind in ("text/markdown", "text/plain"):
            parts.append("".join(o.get("data", {}).get(kind, "")))
    return "\n".join(parts)


def cells(notebook: Path) -> list[dict]:
    return [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]


def page_presets() -> dict[str, str]:
    found = {}
    for nb in notebook_list(ROOT / "notebooks"):
        for c in cells(nb)[:6]:  # near the top: the configuration cell
            m = PAGE_LINE.search(outputs_text(c))
            if m:
                found[nb.name] = m.group(1)
                break
    return found


def results_of(preset: str) -> pd.DataFrame:
    folder = resolve(preset).report_folder
    path = ROOT / "report" / folder / "results.csv" if folder else ROOT / "report" / "results.csv"
    assert path.exists(), f"the pages show preset {preset!r}, whose report {path} is not committed"
    return pd.read_csv(path)


def parse_pivot(text: str) -> dict[tuple[str, str, str], float]:
    """A ``pivot_table(index=[encoder, method], columns=set)`` as pandas prints it -> {(set, encoder, method): value}."""
    lines = [line for line in text.splitlines() if line.strip()]
    sets = lines[0].split()[1:]  # "set  A  B"
    out, encoder = {}, None
    for line in lines[2:]:
        tokens = line.split()
        if not line.startswith(" "):
            encoder, tokens = tokens[0], tokens[1:]
        method, values = tokens[0], tokens[1:]
        for s, v in zip(sets, values):
            if v != "NaN":
                out[s, encoder, method] = float(v)
    return out


def test_parse_pivot_reads_pandas_layout():
    df = pd.DataFrame({"set": ["A", "B", "A", "B"], "encoder": ["N1", "N1", "ResNet-18", "ResNet-18"],
                       "method": ["vicreg"] * 4, "top1": [51.234, 17.25, 60.0, 20.04]})
    text = repr(df.pivot_table(index=["encoder", "method"], columns="set", values="top1").round(1))
    assert parse_pivot(text) == {("A", "N1", "vicreg"): 51.2, ("B", "N1", "vicreg"): 17.2,
                                 ("A", "ResNet-18", "vicreg"): 60.0, ("B", "ResNet-18", "vicreg"): 20.0}


def test_every_page_names_the_one_run_that_produced_it():
    presets = page_presets()
    names = [nb.name for nb in notebook_list(ROOT / "notebooks")]
    assert sorted(presets) == sorted(names), f"pages without the line naming their run: {set(names) - set(presets)}"
    assert len(set(presets.values())) == 1, f"the pages come from different runs: {presets}"
    (preset,) = set(presets.values())
    assert preset in PRESETS


def test_the_numbers_page_04_prints_are_the_reports():
    (preset,) = set(page_presets().values())
    df = results_of(preset)
    (table,) = [outputs_text(c) for c in cells(ROOT / "notebooks" / "04_evaluation.ipynb")
                if "linear.pivot_table" in "".join(c["source"])]
    shown = parse_pivot(table)
    assert len(shown) >= 4
    for (set_, encoder, method), value in shown.items():
        row = report.pick(df, set_, encoder, method, "linear")
        assert row is not None, (set_, encoder, method)
        # pandas rounds as numpy does (76.55 -> 76.6), not as Python's round() (76.55 -> 76.5)
        assert float(np.round(float(row["top1"]), 1)) == pytest.approx(value, abs=1e-9), (set_, encoder, method)
