"""The README quotes the committed coursework report (`report/coursework/`) in a table and a paragraph: each number
it quotes is checked here against the report's `results.csv`, so that a rerun of the report that moves a number
fails until the README says what was measured (no result typed by hand outlives its measurement)."""
import re
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "report" / "coursework"


@pytest.fixture(scope="module")
def readme() -> str:
    return " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())  # line breaks as spaces


@pytest.fixture(scope="module")
def measured():
    rows = pd.read_csv(REPORT / "results.csv")
    rows = rows[rows.encoder == "N1"]

    def value(set_, method, protocol, column="top1", epochs=None, study=False):
        pick = rows[(rows.set == set_) & (rows.method == method) & (rows.protocol == protocol)
                    & (rows.study.notna() if study else rows.study.isna())]
        if epochs is not None:
            pick = pick[pick.encoder_epochs == epochs]
        assert len(pick) == 1, (set_, method, protocol, epochs, study, len(pick))
        return float(pick[column].iloc[0])

    def q(*args, **kwargs):
        return f"{value(*args, **kwargs):.1f}"

    q.value = value
    return q


def test_the_readme_table_of_n1_on_cifar10_is_the_reports(readme, measured):
    m = measured
    assert (f"| supervised, 30 epochs | **{m('A', 'supervised', 'supervised')} / "
            f"{m('A', 'supervised', 'supervised', 'top5')}** |") in readme
    assert (f"| VICReg 30 epochs + linear probe (20 epochs) | **{m('A', 'vicreg', 'linear', epochs=30)} / "
            f"{m('A', 'vicreg', 'linear', 'top5', epochs=30)}** |") in readme
    assert (f"| random-init + linear probe (the floor of a frozen encoder) | {m('A', 'random-init', 'linear')} / "
            f"{m('A', 'random-init', 'linear', 'top5')} |") in readme
    curve = " / ".join(m("A", "vicreg", "linear", epochs=e, study=True) for e in (20, 30, 40))
    assert f"| VICReg after 20 / 30 / 40 epochs, linear probe | {curve} |" in readme
    floor = re.search(r"raw pixels of set A reaches ([0-9.]+) % top-1", (REPORT / "results.md").read_text())
    assert floor and f"| raw pixels + linear probe | {floor.group(1)} |" in readme


def test_the_readme_paragraph_on_tiny_imagenet_and_fine_tuning_is_the_reports(readme, measured):
    m = measured
    assert (f"probe reaches {m('B', 'vicreg', 'linear', epochs=30)} / {m('B', 'vicreg', 'linear', 'top5', epochs=30)} "
            f"(random-init {m('B', 'random-init', 'linear')}, supervised N1's encoder "
            f"{m('B', 'supervised', 'linear')})") in readme
    assert (f"({m('B', 'vicreg', 'finetune-1%')} % and {m('B', 'vicreg', 'finetune-10%')} % fine-tuned on 1 % and "
            f"10 %, below the {m('B', 'vicreg', 'linear', epochs=30)} % probe on all labels)") in readme
    gain = m.value("A", "vicreg", "linear", epochs=30) - m.value("A", "random-init", "linear")
    assert f"VICReg adds **{gain:.1f} points** over a random N1's features" in readme
    assert (f"random weights ({m('A', 'random-init', 'finetune-10%')} %) end above VICReg's "
            f"({m('A', 'vicreg', 'finetune-10%')} %)") in readme
