"""The report's conclusions: each coursework claim's verdict, computed from small hand-made tables.

A verdict must follow the numbers: when the numbers flip, the verdict flips; within the noise tolerance it
says so; a gap that the budget explains, a value on other data and a missing row are not called a result.
"""
import ast
import json
from pathlib import Path

import pandas as pd
import pytest

from course_lib import claims, report, results
from course_lib.config import resolve

CLAIMS = {c.name: c for c in report.CLAIMS}


def row(set_, encoder, method, protocol, top1, dataset=None, encoder_epochs=30, encoder_images=50_000,
        epochs=20, protocol_images=None):
    """One results row with the budget columns the notebooks record (the coursework's budget by default)."""
    dataset = dataset or {"A": "cifar10 (image folder)", "B": "tiny-imagenet at 32 px"}[set_]
    if protocol_images is None and protocol != "supervised":
        fraction = {"finetune-1%": 0.01, "finetune-10%": 0.1}.get(protocol, 1.0)
        protocol_images = round(fraction * report.COURSEWORK_TRAIN_IMAGES[set_])
    return report.make_row(set_, dataset, encoder, method, protocol,
                           {"top1": top1, "top5": 100.0, "epochs": epochs, "seconds": 0.0},
                           encoder_epochs=encoder_epochs, encoder_images=encoder_images, protocol_images=protocol_images)


def table(*rows):
    return pd.DataFrame(list(rows))


def check(name, df, tol=1.0):
    return report.check_claim(df, CLAIMS[name], tol)


# ----------------------------------------------------------------------------- the noise tolerance
def test_noise_tolerance_is_two_standard_errors_with_a_floor():
    assert report.noise_tolerance(226) == pytest.approx(100 / 226 ** 0.5)  # the digits' set A: 6.65 points
    assert report.noise_tolerance(10_000) == 1.0  # CIFAR-10's test split
    assert report.noise_tolerance(1_000_000) == 1.0  # never below the floor
    assert report.noise_tolerance(None) == 2.0 and report.noise_tolerance(0) == 2.0  # size unknown


def test_split_sizes_from_the_run_else_from_the_data_sets_names(tmp_path):
    real = table(row("A", "N1", "vicreg", "linear", 60.0), row("B", "N1", "vicreg", "linear", 10.0))
    assert report.test_split_sizes(real) == {"A": 10_000, "B": 10_000}
    digits = table(row("A", "N1", "vicreg", "linear", 60.0, dataset="digits 0-4 scattered (16 px)"))
    assert report.test_split_sizes(digits) == {}
    cfg = resolve("test", out_dir=str(tmp_path))
    (report.metrics_dir(cfg) / "data.txt").write_text(json.dumps(
        {"A": {"name": "d", "train": 675, "test": 226, "classes": 5, "px": 16}}))
    assert report.test_split_sizes(digits, cfg) == {"A": 226}


# ----------------------------------------------------------------------------- ordering claims
def test_an_ordering_claim_flips_with_the_numbers():
    held = check("supervised N1 beats N2", table(row("A", "N1", "supervised", "supervised", 72.0),
                                             row("A", "N2", "supervised", "supervised", 65.0)))
    assert held.verdict == report.HELD
    assert "supervised N1 (72.0 %) is 7.0 points higher than supervised N2 (65.0 %)" in held.evidence
    assert "both encoders trained 30 epochs on 50,000 images" in held.evidence
    flipped = check("supervised N1 beats N2", table(row("A", "N1", "supervised", "supervised", 65.0),
                                                row("A", "N2", "supervised", "supervised", 72.0)))
    assert flipped.verdict == report.NOT_HELD
    assert "7.0 points lower than" in flipped.evidence


def test_a_gap_within_the_tolerance_is_noise():
    df = table(row("A", "N1", "supervised", "supervised", 70.0), row("A", "N1", "vicreg", "linear", 68.0))
    assert check("VICReg on N1 below supervised N1", df, tol=1.0).verdict == report.HELD
    noise = check("VICReg on N1 below supervised N1", df, tol=2.5)
    assert noise.verdict == report.NOISE
    assert "about the same as (a difference of 2.0 points)" in noise.evidence and "±2.5 points" in noise.evidence


def test_a_winner_with_far_more_training_is_not_comparable():
    # cpu-cifar's case: supervised N1 8 epochs x 50,000 against ResNet-18 2 epochs x 4,000 (50x fewer images seen)
    df = table(row("A", "N1", "supervised", "supervised", 77.7, encoder_epochs=8),
               row("A", "N2", "supervised", "supervised", 30.1, encoder_epochs=2, encoder_images=4_000))
    v = check("supervised N1 beats N2", df)
    assert v.verdict == report.NOT_COMPARABLE
    assert "saw 50x the training images" in v.reason
    assert "the supervised N1 trained 8 epochs on 50,000 images, the supervised N2 trained 2 epochs on " \
           "4,000 images" in v.evidence
    # the row that won had *less* training than the one it beat: the ordering stands
    df = table(row("A", "N1", "supervised", "supervised", 77.7, encoder_epochs=8),
               row("A", "N1", "vicreg", "linear", 68.0, encoder_epochs=12))
    assert check("VICReg on N1 below supervised N1", df).verdict == report.HELD


def test_the_best_claim_is_tested_against_the_strongest_competitor():
    rows = [row("A", "N1", "supervised", "supervised", 70.0), row("A", "N2", "supervised", "supervised", 68.0),
            row("A", "N1", "vicreg", "linear", 75.0)]
    v = check("VICReg on N2 is best", table(*rows, row("A", "N2", "vicreg", "linear", 80.0)))
    assert v.verdict == report.HELD and "VICReg N1 + linear probe (75.0 %), the strongest" in v.evidence
    assert check("VICReg on N2 is best", table(*rows, row("A", "N2", "vicreg", "linear", 72.0))).verdict == \
        report.NOT_HELD


def test_other_data_still_tests_an_ordering_and_says_which_data():
    digits = "digits 0-4 scattered (16 px)"
    v = check("supervised N1 beats N2", table(row("A", "N1", "supervised", "supervised", 95.6, dataset=digits),
                                          row("A", "N2", "supervised", "supervised", 56.2, dataset=digits)))
    assert v.verdict == report.HELD and v.evidence.startswith(f"Ours on {digits}:")


def test_fine_tuning_claims_fall_back_to_N1_and_else_are_not_run():
    n1 = table(row("B", "N1", "vicreg", "linear", 18.1), row("B", "N1", "vicreg", "finetune-1%", 0.4))
    v = check("Tiny ImageNet 1 % fine-tuning", n1)
    assert v.verdict == report.NOT_HELD and "(with N1: this run has no N2 rows for it)" in v.evidence
    assert "one encoder, trained 30 epochs" in v.evidence
    flipped = table(row("B", "N1", "vicreg", "linear", 18.1), row("B", "N1", "vicreg", "finetune-1%", 40.0))
    assert check("Tiny ImageNet 1 % fine-tuning", flipped).verdict == report.HELD
    missing = check("Tiny ImageNet 10 % fine-tuning", n1)
    assert missing.verdict == report.NOT_RUN and "fine-tuned on 10 % of the labels" in missing.evidence


def test_the_cifar_stem_resnet18_stands_in_for_n2_and_says_so():
    df = table(row("A", "N1", "supervised", "supervised", 72.0), row("A", "ResNet-18", "supervised", "supervised", 65.0))
    v = check("supervised N1 beats N2", df)
    assert v.verdict == report.HELD
    assert "our ResNet-18 with the CIFAR stem stands in for N2: this run has no N2 rows" in v.evidence
    # N2's own row, when there is one, is the one judged
    own = check("supervised N1 beats N2", table(*df.to_dict("records"), row("A", "N2", "supervised", "supervised", 75.0)))
    assert own.verdict == report.NOT_HELD and "stands in" not in own.evidence
    # a value is never judged on another architecture
    stand_in = check("Tiny ImageNet linear probe", table(row("B", "ResNet-18", "vicreg", "linear", 53.0)))
    assert stand_in.verdict == report.NOT_COMPARABLE
    cmp = report.comparison_table(df).set_index(["set", "method", "protocol"])
    assert cmp.loc[("A", "supervised", "supervised"), "encoder"].tolist() == ["N1", "N2 (ours: ResNet-18)"]
    assert cmp.loc[("A", "supervised", "supervised"), "comparable"].tolist()[1].startswith("no: our ResNet-18")


def epochs_rows(curve: dict, encoder="N1", dataset=None, encoder_images=50_000):
    return [report.make_row("A", dataset or "cifar10 (image folder)", encoder, "vicreg", "linear",
                            {"top1": top1, "top5": 99.0, "epochs": 20, "seconds": 0.0}, study="epochs",
                            pretrain_epochs=e, encoder_epochs=e, encoder_images=encoder_images,
                            protocol_images=50_000) for e, top1 in curve.items()]


def test_the_epochs_claim_follows_the_curve_and_ignores_the_tables_rows():
    held = check("30 epochs is best", table(*epochs_rows({20: 60.0, 30: 64.0, 40: 61.0})))
    assert held.verdict == report.HELD and "Judged on N1: N2 has no 40-epoch point" in held.evidence
    assert "20 epochs 60.0 %, 30 epochs 64.0 %, 40 epochs 61.0 %" in held.evidence
    assert check("30 epochs is best", table(*epochs_rows({20: 60.0, 30: 64.0, 40: 66.0}))).verdict == report.NOT_HELD
    assert check("30 epochs is best", table(*epochs_rows({20: 60.0, 30: 64.0, 40: 63.5}))).verdict == report.NOISE
    # N2's own curve when it has all three points
    both = table(*epochs_rows({20: 60.0, 30: 64.0, 40: 61.0}), *epochs_rows({20: 70.0, 30: 71.0, 40: 75.0}, "N2"))
    assert check("30 epochs is best", both).verdict == report.NOT_HELD
    other = table(*epochs_rows({20: 60.0, 30: 64.0, 40: 61.0}, dataset="digits 0-4 scattered (16 px)"))
    assert check("30 epochs is best", other).verdict == report.OTHER_DATA
    small = table(*epochs_rows({20: 60.0, 30: 64.0, 40: 61.0}, encoder_images=10_000))
    assert check("30 epochs is best", small).verdict == report.NOT_COMPARABLE
    assert check("30 epochs is best", table(row("A", "N1", "vicreg", "linear", 60.0))).verdict == report.NOT_RUN
    # the study's rows never stand for the encoder in the tables (pick), and the table's row is not in the study
    df = table(row("A", "N1", "vicreg", "linear", 64.0), *epochs_rows({20: 60.0, 30: 64.5, 40: 70.0}))
    assert report.top1_of(df, "A", "N1", "vicreg", "linear") == 64.0
    assert float(report.pick(df, "A", "N1", "vicreg", "linear", epochs=40)["top1"]) == 70.0


# ----------------------------------------------------------------------------- value claims
def test_a_value_claim_needs_the_coursework_data_and_budget():
    lin = ("B", "N2", "vicreg", "linear")
    assert check("Tiny ImageNet linear probe", table(row(*lin, 53.0))).verdict == report.HELD
    assert check("Tiny ImageNet linear probe", table(row(*lin, 51.5)), tol=1.0).verdict == report.HELD  # within 1 point
    low = check("Tiny ImageNet linear probe", table(row(*lin, 50.5)), tol=1.0)
    assert low.verdict == report.NOT_HELD and low.evidence.startswith("Ours: 50.5 %, 1.8 points lower than the coursework's")
    short = check("Tiny ImageNet linear probe", table(row(*lin, 5.5, encoder_epochs=2, encoder_images=4_000)))
    assert short.verdict == report.NOT_COMPARABLE and "short-trained (2 of 30 epochs" in short.reason
    other = check("Tiny ImageNet linear probe", table(row(*lin, 76.8, dataset="digits 5-9 scattered (16 px)")))
    assert other.verdict == report.OTHER_DATA and "on digits 5-9 scattered" in other.evidence
    assert check("Tiny ImageNet linear probe", table(row("A", "N1", "vicreg", "linear", 60.0))).verdict == report.NOT_RUN


# ----------------------------------------------------------------------------- the text of the report
def test_verdicts_print_the_claim_the_verdict_and_why():
    verdicts = report.check_claims(table(row("A", "N1", "supervised", "supervised", 72.0),
                                         row("A", "N2", "supervised", "supervised", 65.0)))
    assert [v.claim.name for v in verdicts] == list(CLAIMS)
    line = verdicts[0].markdown()
    assert line.startswith("- *Supervised N1 beats supervised N2 (its ResNet-18) on CIFAR-10: 70.6 % vs 68.1 %.* **Held.**")
    assert "93-95 %" in line  # the literature's reason, from report.LITERATURE
    assert report.verdict_summary(verdicts) == "1 held and 6 not run"
    assert "92.07 %" in CLAIMS["VICReg on N2 is best"].why


def test_conclusions_say_when_the_real_data_table_is_absent(tmp_path):
    digits = table(row("A", "N1", "supervised", "supervised", 95.6, dataset="digits"),
                   row("A", "N2", "supervised", "supervised", 56.2, dataset="digits"))
    text = "\n".join(report.conclusions_section(digits, {"A": 226}, real_data=tmp_path / "results.csv"))
    assert "### This run (set A = digits)" in text and "1 held and 6 not run" in text
    assert "There is no real-data table at" in text


def test_conclusions_name_the_verdicts_that_differ_on_the_real_data(tmp_path):
    digits = table(row("A", "N1", "supervised", "supervised", 95.6, dataset="digits"),
                   row("A", "N2", "supervised", "supervised", 56.2, dataset="digits"))
    real = table(row("A", "N1", "supervised", "supervised", 65.0),
                 row("A", "N2", "supervised", "supervised", 75.0))
    real.to_csv(tmp_path / "results.csv", index=False)
    text = "\n".join(report.conclusions_section(digits, {"A": 226}, real_data=tmp_path / "results.csv"))
    assert "gives: 1 did not hold and 6 not run" in text
    assert "Its verdicts differ from this run's for \"supervised N1 beats N2\" (held -> did not hold)." in text


def test_the_written_report_carries_the_conclusions(tmp_path):
    cfg = resolve("test", out_dir=str(tmp_path))
    report.save_rows(cfg, "x", [row("A", "N1", "supervised", "supervised", 95.6, dataset="digits", encoder_epochs=4),
                                row("A", "N2", "supervised", "supervised", 56.2, dataset="digits",
                                    encoder_epochs=4)])
    _, md = report.write_report(cfg, real_data=tmp_path / "absent.csv")
    text = md.read_text()
    assert "## Conclusions: the coursework's claims, checked" in text and "**Held.**" in text
    assert "noise tolerance ±2.0 points" in text  # no data.txt: the split's size is unknown
    assert "There is no real-data table" in text
    # a run on the coursework's own data is its own real-data report: no second section
    cfg = resolve("test", out_dir=str(tmp_path / "real"))
    report.save_rows(cfg, "x", [row("A", "N1", "supervised", "supervised", 77.7)])
    text = report.write_report(cfg, real_data=tmp_path / "absent.csv")[1].read_text()
    assert "## Conclusions" in text and "### On the coursework's data" not in text


def test_a_claim_of_your_own_against_an_untrained_encoder_is_not_a_budget_gap():
    claim = report.Claim("VICReg helps on B", "VICReg pretraining helps N1 on set B.", "order",
                         ("B", "N1", "vicreg", "linear"), (("B", "N1", "random-init", "linear"),))
    df = table(row("B", "N1", "vicreg", "linear", 18.1, encoder_epochs=12),
               row("B", "N1", "random-init", "linear", 8.5, encoder_epochs=0, encoder_images=0))
    v = report.check_claims(df, 1.0, claims=(claim,))[0]
    assert v.verdict == report.HELD and "the VICReg N1 trained 12 epochs on 50,000 images, the random-init N1 untrained" in v.evidence
    df.loc[df.method == "random-init", "top1"] = 30.0
    assert report.check_claims(df, 1.0, claims=(claim,))[0].verdict == report.NOT_HELD


# ----------------------------------------------------------------------------- where each part lives
PACKAGE = Path(report.__file__).parent
#: Calls that touch files: the builtin, pathlib's, pandas', numpy's, json's/pickle's/torch's load and save
#: (``replace`` is left out: str.replace is everywhere, and os/pathlib may not be imported at all).
FILE_CALLS = {"open", "read_text", "write_text", "read_bytes", "write_bytes", "exists", "is_file", "is_dir", "glob",
              "rglob", "iterdir", "mkdir", "unlink", "rename", "stat", "touch", "read_csv", "to_csv",
              "read_json", "to_json", "read_pickle", "to_pickle", "load", "loads", "dump", "dumps", "save",
              "loadtxt", "savetxt"}
FILE_MODULES = {"os", "io", "pathlib", "json", "pickle", "shutil", "tempfile", "glob", "csv", "torch", "numpy"}


def _file_calls(node: ast.AST) -> set[str]:
    """The file-touching calls (:data:`FILE_CALLS`) and ``Path`` uses inside ``node``."""
    found = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            f = n.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
            if name in FILE_CALLS:
                found.add(name)
        if isinstance(n, ast.Name) and n.id in ("Path", "PurePath"):
            found.add(n.id)
    return found


def _functions_touching_files(module: str) -> set[str]:
    """The top-level functions of ``course_lib/<module>.py`` that touch files, directly or through one another."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    touching = {name for name, node in defs.items() if _file_calls(node)}
    while True:
        more = {name for name, node in defs.items() if name not in touching and any(
            isinstance(n, ast.Name) and n.id in touching for n in ast.walk(node))}
        if not more:
            return touching
        touching |= more


def test_the_claims_engine_reads_no_file():
    tree = ast.parse((PACKAGE / "claims.py").read_text())
    assert _file_calls(tree) == set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not {a.name.split(".")[0] for a in node.names} & FILE_MODULES
        elif isinstance(node, ast.ImportFrom) and not node.level:
            assert node.module.split(".")[0] not in FILE_MODULES
        elif isinstance(node, ast.ImportFrom) and node.module:  # from .results import pick: never a file reader
            assert not {a.name for a in node.names} & _functions_touching_files(node.module), node.module
        elif isinstance(node, ast.ImportFrom):  # from . import noise: the whole module is pure
            for a in node.names:
                assert _file_calls(ast.parse((PACKAGE / f"{a.name}.py").read_text())) == set(), a.name
    # the checker itself sees a reader
    assert _file_calls(ast.parse("x = pd.read_csv(p)\ny = Path(p).exists()")) == {"read_csv", "Path", "exists"}
    assert {"load_rows", "test_split_sizes", "save_rows"} <= _functions_touching_files("results")
    assert "pick" not in _functions_touching_files("results")


def test_check_claims_on_a_hand_made_table_touches_no_file_and_keeps_its_verdicts(monkeypatch):
    df = table(row("A", "N1", "supervised", "supervised", 72.0), row("A", "N2", "supervised", "supervised", 65.0),
               row("A", "N1", "vicreg", "linear", 60.0), row("A", "N2", "vicreg", "linear", 80.0),
               row("B", "N2", "vicreg", "linear", 50.5), row("B", "N2", "vicreg", "finetune-1%", 40.0),
               row("B", "N2", "vicreg", "finetune-10%", 51.0), *epochs_rows({20: 60.0, 30: 64.0, 40: 61.0}))

    touched = []

    def record(name, original):
        def call(*args, **kwargs):
            touched.append(name)
            return original(*args, **kwargs)
        return call

    with monkeypatch.context() as m:  # undone before any assertion (pytest itself needs open to report one)
        for name in ("open", "read_text", "read_bytes", "exists", "glob", "iterdir", "mkdir", "write_text"):
            m.setattr(Path, name, record(name, getattr(Path, name)))
        m.setattr("builtins.open", record("open", open))
        m.setattr(pd, "read_csv", record("read_csv", pd.read_csv))
        verdicts = claims.check_claims(df)  # tolerance from the data sets' names: 10,000 test images, 1 point
        table_ = claims.comparison_table(df)
    assert touched == []
    assert [v.verdict for v in verdicts] == [report.HELD, report.HELD, report.HELD, report.NOT_HELD, report.NOT_HELD,
                                             report.NOISE, report.HELD]
    assert claims.verdict_summary(verdicts) == "4 held, 2 did not hold and 1 within noise"
    assert table_["comparable"].tolist() == ["yes"] * 4 + ["—"] * 2 + ["yes"] * 3


def test_the_report_passes_on_the_rows_and_the_claims_it_renders(tmp_path):
    # the notebooks' names reach the same objects through report, the facade
    for name in report.__all__:
        assert hasattr(report, name), name
    assert report.check_claims is claims.check_claims and report.CLAIMS is claims.CLAIMS
    assert report.make_row is results.make_row and report.save_rows is results.save_rows
    # reading a run's files creates no folder; only saving does
    cfg = resolve("test", out_dir=str(tmp_path / "run"))
    assert report.load_rows(cfg).empty and report.load_baselines(cfg) is None
    assert results.load_data_description(cfg) is None and report.test_split_sizes(report.load_rows(cfg), cfg) == {}
    assert not (tmp_path / "run").exists()
    report.save_baselines(cfg, {"A": 50.0})
    assert report.load_baselines(cfg) == {"A": 50.0}


def test_the_report_page_opens_with_its_figures_and_ends_with_a_narrow_table(tmp_path):
    cfg = resolve("coursework", out_dir=str(tmp_path), data_root=str(tmp_path))
    report.save_rows(cfg, "x", [row("A", "N1", "supervised", "supervised", 83.9),
                                row("A", "N1", "vicreg", "linear", 51.7, encoder_epochs=30),
                                row("A", "N1", "random-init", "linear", 47.9, encoder_epochs=0, encoder_images=0)])
    text = report.write_report(cfg, real_data=tmp_path / "absent.csv")[1].read_text()
    assert "![" not in text  # no figure drawn yet: no link to a missing picture
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "accuracy_overview.png").write_bytes(b"png")
    text = report.write_report(cfg, real_data=tmp_path / "absent.csv")[1].read_text()
    # report/coursework/results.md -> figures/coursework/accuracy_overview.png
    assert "](../../figures/coursework/accuracy_overview.png)" in text and "semi_supervised" not in text
    order = [text.index(s) for s in ("**Figure.**", "## Beside the coursework", "## What pretraining added",
                                     "## Every measured row", "## Conclusions")]
    assert order == sorted(order)
    rows = report.rows_table(report.load_rows(cfg))
    assert list(rows.columns) == ["set", "encoder", "method", "protocol", "top-1", "top-5", "encoder trained",
                                  "protocol epochs", "seconds"]
    by_method = rows.set_index("method")["encoder trained"].to_dict()
    assert by_method == {"supervised": "30 ep x 50,000", "VICReg": "30 ep x 50,000", "random-init": "—"}
    # the digits' report sits at the top of report/: one folder up
    digits = resolve("test", out_dir=str(tmp_path / "d"))
    (tmp_path / "d" / "figures").mkdir(parents=True)
    (tmp_path / "d" / "figures" / "semi_supervised.png").write_bytes(b"png")
    report.save_rows(digits, "x", [row("A", "N1", "supervised", "supervised", 95.6, dataset="digits")])
    text = report.write_report(digits, real_data=tmp_path / "absent.csv")[1].read_text()
    assert "](../figures/semi_supervised.png)" in text and "accuracy_overview" not in text
