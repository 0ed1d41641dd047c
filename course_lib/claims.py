"""The coursework's claims, checked: its reference numbers and the verdict engine.

Introduced in notebook 06. The coursework's results (:data:`COURSEWORK`, its section 7.2 / 7.4) and the
literature's (:data:`LITERATURE`) are *references*, quoted from their sources and always shown as such. Each claim
of the coursework's conclusions (:data:`CLAIMS`) gets a verdict computed from a table of rows (this run's, or a
committed results.csv): held, did not hold, within noise, not comparable, or not run (:func:`check_claims`); two
accuracies within the course's noise rule (:func:`noise_tolerance`) are "about the same". Every function here is
a pure function of a table and test-split sizes and reads no file: :mod:`course_lib.results` reads the rows,
:mod:`course_lib.report` writes the verdicts into the report.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from . import noise
from .config import METHOD_TITLES
from .narrate import listing, pct, points
from .results import _int, label_fraction, pick, sizes_from_names

#: The coursework's section 7.2 / 7.4 (CIFAR-10 = set A, Tiny ImageNet = set B; N2 = its ResNet-18,
#: our encoder "N2": a 3x3 first conv and the max-pool kept).
COURSEWORK = {
    ("A", "N1", "supervised", "supervised"): (70.6, 97.6),
    ("A", "N2", "supervised", "supervised"): (68.1, 96.5),
    ("A", "N1", "vicreg", "linear"): (64.8, 96.9),
    ("A", "N2", "vicreg", "linear"): (89.6, 99.7),
    ("A", "N2", "vicreg", "finetune-1%"): (85.5, 99.2),
    ("A", "N2", "vicreg", "finetune-10%"): (90.3, 99.7),
    ("B", "N2", "vicreg", "linear"): (52.3, 74.0),
    ("B", "N2", "vicreg", "finetune-1%"): (79.7, 94.7),
    ("B", "N2", "vicreg", "finetune-10%"): (86.4, 95.9),
}

#: The coursework's budgets: every encoder trained 30 epochs on CIFAR-10's 50,000 training images; the linear
#: probe and fine-tuning ran 20 epochs; the probe used all of a set's training labels (A 50,000, B 100,000).
COURSEWORK_ENCODER_EPOCHS = 30
COURSEWORK_PROTOCOL_EPOCHS = 20
COURSEWORK_TRAIN_IMAGES = {"A": 50_000, "B": 100_000}
#: Datasets the coursework used, by set (our loaders' names start with these).
COURSEWORK_DATA = {"A": "cifar10", "B": "tiny-imagenet"}

#: Published CIFAR-10 top-1 for ResNet-18 with the CIFAR stem (what a properly trained network reaches), shown
#: beside the coursework's N2 rows.
LITERATURE = {
    ("A", "N2", "supervised", "supervised"): ("93-95", "supervised ResNet-18, standard augmentation and schedule"),
    ("A", "N2", "vicreg", "linear"): ("92.07", "solo-learn VICReg, 1000 epochs"),
}

#: The encoder a table without the coursework's N2 shows in its place: the literature's CIFAR-stem ResNet-18. Its
#: rows stand in for N2's (labelled so); a value claim is then not comparable.
STAND_INS = {"N2": "ResNet-18"}


def resolve_key(df: pd.DataFrame, key: tuple) -> tuple:
    """``key`` with its encoder replaced by its stand-in (:data:`STAND_INS`) when ``df`` has no row of its own."""
    if pick(df, *key) is None and key[1] in STAND_INS:
        other = (key[0], STAND_INS[key[1]], *key[2:])
        if pick(df, *other) is not None:
            return other
    return key


def budget_text(row) -> str:
    """A row's training budget in words: "VICReg 12 ep x 50,000; probe 100 ep x 50,000"."""
    epochs, images = _int(row.get("encoder_epochs")), _int(row.get("encoder_images"))
    if epochs is None:
        return "—"
    if row["protocol"] == "supervised":
        return f"{epochs} ep x {images:,}"
    encoder = "untrained" if not epochs else f"{row['method']} {epochs} ep x {images:,}"
    n = _int(row.get("protocol_images"))
    if row["protocol"].startswith("knn"):
        return f"{encoder}; kNN on {n:,}" if n else encoder
    steps = _int(row.get("steps"))
    if steps is not None:  # fine-tuning: a step budget
        return f"{encoder}; {row['protocol']} {steps} steps" + (f" x {_int(row.get('batch'))} of {n:,}" if n else "")
    return f"{encoder}; {row['protocol']} {int(row['epochs'])} ep" + (f" x {n:,}" if n else "")


def coursework_steps(labels: int) -> int:
    """The coursework's fine-tuning steps on ``labels`` images: 20 epochs at batch 256 (a ragged batch dropped,
    at least one step per epoch)."""
    return COURSEWORK_PROTOCOL_EPOCHS * max(1, labels // 256)


def _coursework_data(set_: str, dataset) -> bool:
    """Whether ``dataset`` (a loader's name) is the data the coursework used for ``set_``."""
    return str(dataset).lower().startswith(COURSEWORK_DATA.get(set_, "?"))


def comparability(row) -> str:
    """"yes" when a row had the coursework's data and at least its budget, else "no: " and what differs."""
    set_ = row["set"]
    if not _coursework_data(set_, row.get("dataset", "")):
        return f"no: other data ({row['dataset']})"
    short = []
    epochs, images = _int(row.get("encoder_epochs")), _int(row.get("encoder_images"))
    if epochs is None:
        return "no: budget not recorded"
    if row["method"] not in ("random-init", "pixels"):
        if epochs < COURSEWORK_ENCODER_EPOCHS:
            short.append(f"{epochs} of {COURSEWORK_ENCODER_EPOCHS} epochs")
        if images < COURSEWORK_TRAIN_IMAGES["A"]:
            short.append(f"{images:,} of {COURSEWORK_TRAIN_IMAGES['A']:,} images of A")
    if row["protocol"] != "supervised":
        n = _int(row.get("protocol_images"))
        fraction = label_fraction(row["protocol"])
        wanted = round(fraction * COURSEWORK_TRAIN_IMAGES[set_])
        steps = _int(row.get("steps"))
        if steps is not None:  # a step budget: at least the coursework's 20 epochs' steps on its labelled images
            if steps < coursework_steps(wanted):
                short.append(f"{row['protocol']} {steps} of {coursework_steps(wanted)} steps")
        elif not row["protocol"].startswith("knn") and int(row["epochs"]) < COURSEWORK_PROTOCOL_EPOCHS:
            short.append(f"{row['protocol']} {int(row['epochs'])} of {COURSEWORK_PROTOCOL_EPOCHS} epochs")
        if n is not None and n < wanted:
            short.append(f"{row['protocol']} on {n:,} of {wanted:,} images of {set_}")
    return "yes" if not short else "no: short-trained (" + "; ".join(short) + ")"


def comparison_table(df: pd.DataFrame) -> pd.DataFrame:
    """Our top-1/top-5 beside the coursework's and the literature's, for every row the coursework reports,
    with our budget and whether the two numbers are comparable (:func:`comparability`)."""
    out = []
    for (set_, enc, method, protocol), (c1, c5) in COURSEWORK.items():
        ours = resolve_key(df, (set_, enc, method, protocol))
        row = pick(df, *ours)  # the longest-trained (04's VICReg rather than 05's short one)
        lit = LITERATURE.get((set_, enc, method, protocol), ("", ""))
        comparable = "—" if row is None else comparability(row)
        if row is not None and ours[1] != enc:
            comparable = f"no: our {ours[1]} (CIFAR stem), not the coursework's {enc}"
        out.append({
            "set": set_, "encoder": enc if ours[1] == enc else f"{enc} (ours: {ours[1]})", "method": method,
            "protocol": protocol,
            "ours top1": None if row is None else float(row["top1"]),
            "ours top5": None if row is None else float(row["top5"]),
            "coursework top1": c1, "coursework top5": c5,
            "literature top1": lit[0],
            "our budget": "not run" if row is None else budget_text(row),
            "comparable": comparable,
        })
    return pd.DataFrame(out)


HELD, NOT_HELD, NOISE = "held", "did not hold", "within noise"
NOT_COMPARABLE, OTHER_DATA, NOT_RUN = "not comparable at this budget", "not comparable: other data", "not run"
VERDICTS = (HELD, NOT_HELD, NOISE, NOT_COMPARABLE, OTHER_DATA, NOT_RUN)

#: An ordering between two of our trained rows is "not comparable at this budget" when the row that came out ahead
#: saw more than this many times the training images (epochs x images) of the other: the gap may be the budget's.
#: (Against an untrained row the gap *is* what training buys, which is what such a claim tests.)
BUDGET_FACTOR = 2.0

_SUP_N1, _SUP_R18 = ("A", "N1", "supervised", "supervised"), ("A", "N2", "supervised", "supervised")
_VIC_N1, _VIC_R18 = ("A", "N1", "vicreg", "linear"), ("A", "N2", "vicreg", "linear")
_B_LIN, _B_FT1, _B_FT10 = (("B", "N2", "vicreg", p) for p in ("linear", "finetune-1%", "finetune-10%"))
_cw = lambda key: COURSEWORK[key][0]  # noqa: E731


def noise_tolerance(test_images: int | None) -> float:
    """Points within which two top-1 accuracies on one test split count as "about the same":
    :func:`course_lib.noise.tolerance` (the course's one rule). 226 test images: 6.7 points; 10,000: 1.0."""
    return noise.tolerance(test_images)


@dataclass(frozen=True)
class Claim:
    """One claim of the coursework's conclusions, as a test on a results table.

    ``kind="order"``: our ``hi`` row must beat the best of the ``lo`` rows (as it did in the coursework);
    ``kind="value"``: our ``hi`` row must reach the coursework's value (only on its data and budget).
    ``fallback``: the encoder to test instead when this run has no rows of the claim's own encoder.
    ``why``: the reasoning from the literature, true whatever our numbers are.
    """

    name: str
    text: str
    kind: str
    hi: tuple
    lo: tuple = ()
    fallback: str | None = None
    why: str = ""


CLAIMS: tuple[Claim, ...] = (
    Claim("supervised N1 beats N2",
          f"Supervised N1 beats supervised N2 (its ResNet-18) on CIFAR-10: {_cw(_SUP_N1)} % vs {_cw(_SUP_R18)} %.",
          "order", _SUP_N1, (_SUP_R18,),
          why=f"A ResNet-18 trained with a standard schedule reaches about {LITERATURE[_SUP_R18][0]} % on CIFAR-10, "
              "far above both: after 30 epochs the 11 M-parameter network is under-trained, so this ordering "
              "measures the schedule, not the architecture."),
    Claim("VICReg on N2 is best",
          f"VICReg on N2 (its ResNet-18) gives the best CIFAR-10 encoder: {_cw(_VIC_R18)} % linear top-1, above both "
          f"supervised networks ({_cw(_SUP_N1)} %, {_cw(_SUP_R18)} %) and VICReg on N1 ({_cw(_VIC_N1)} %).",
          "order", _VIC_R18, (_SUP_N1, _SUP_R18, _VIC_N1),
          why=f"solo-learn's VICReg ResNet-18 reaches {LITERATURE[_VIC_R18][0]} % only after 1000 epochs, with "
              "colour jitter, grayscale and solarization; the coursework's value after 30 epochs of crops and flips "
              "alone (an augmentation Chen et al., 2020, found far weaker than crops with colour distortion) is "
              "implausibly close to it. And in the literature a linear probe on self-supervised features stays "
              f"below the supervised network trained as long ({LITERATURE[_VIC_R18][0]} % vs about "
              f"{LITERATURE[_SUP_R18][0]} %): the coursework's lead of VICReg over supervision measures the "
              "supervised networks' short training."),
    Claim("VICReg on N1 below supervised N1",
          f"VICReg on N1 stays below supervised N1 on CIFAR-10: {_cw(_VIC_N1)} % vs {_cw(_SUP_N1)} %.",
          "order", _SUP_N1, (_VIC_N1,),
          why="The supervised network is trained for exactly the labels the probe measures; self-supervised "
              "features close that gap only with long training (ResNet-18 on CIFAR-10: "
              f"{LITERATURE[_VIC_R18][0]} % for VICReg after 1000 epochs against about {LITERATURE[_SUP_R18][0]} % "
              "supervised)."),
    Claim("Tiny ImageNet linear probe",
          f"A linear probe on VICReg's N2 (its ResNet-18) reaches {_cw(_B_LIN)} % top-1 ({COURSEWORK[_B_LIN][1]} % top-5) on "
          "Tiny ImageNet, whose 200 categories the encoder never saw.",
          "value", _B_LIN,
          why="Chance is 0.5 % among 200 categories, and at 32 px many of them are hard to tell apart even with "
              "labels; we know no published number for this transfer, so only a run with the coursework's data "
              "and budget can check the value."),
    Claim("Tiny ImageNet 1 % fine-tuning",
          f"Fine-tuning on Tiny ImageNet with 1 % of the labels (5 images per class) reaches {_cw(_B_FT1)} %, "
          f"{_cw(_B_FT1) - _cw(_B_LIN):.1f} points above the linear probe trained on all of them ({_cw(_B_LIN)} %).",
          "order", _B_FT1, (_B_LIN,), fallback="N1",
          why="Implausible on its face: 1,000 labelled images cannot train a 200-class classifier far better than "
              "100,000 do on the same encoder. The coursework's result points to a flaw in its evaluation "
              "(e.g. test images seen in training), not to a real effect."),
    Claim("Tiny ImageNet 10 % fine-tuning",
          f"Fine-tuning on Tiny ImageNet with 10 % of the labels reaches {_cw(_B_FT10)} %, "
          f"{_cw(_B_FT10) - _cw(_B_LIN):.1f} points above the linear probe on all of them ({_cw(_B_LIN)} %).",
          "order", _B_FT10, (_B_LIN,), fallback="N1",
          why=f"{_cw(_B_FT10)} % among 200 categories would be above what the coursework's own supervised networks "
              f"reached among CIFAR-10's 10 classes with every label ({_cw(_SUP_N1)} %, {_cw(_SUP_R18)} %): "
              "not credible without an error in the evaluation."),
    Claim("30 epochs is best",
          "Of 20, 30 and 40 epochs of VICReg, 30 gave the best encoder; with more, \"overfitting began\" "
          "(section 7.3).",
          "epochs", _VIC_R18, (20, 30, 40), fallback="N1",
          why="Self-supervised encoders of CIFAR-10 are trained for hundreds of epochs (solo-learn: 1000) and their "
              "linear accuracy keeps rising long after 40; a drop from 30 to 40 epochs in one run of each is as "
              "likely to be noise (a seed, a test split) as overfitting, which would need several seeds to show."),
)


@dataclass(frozen=True)
class Verdict:
    """A claim, the verdict our table gives it (one of :data:`VERDICTS`), and the sentences that justify it."""

    claim: Claim
    verdict: str
    evidence: str
    reason: str = ""

    def markdown(self) -> str:
        reason = f" {self.reason}" if self.reason else ""
        why = f" Why: {self.claim.why}" if self.claim.why else ""
        return f"- *{self.claim.text}* **{self.verdict.capitalize()}.** {self.evidence}{reason}{why}"


def _label(key) -> str:
    """``("A", "N1", "vicreg", "linear")`` -> ``"VICReg N1 + linear probe"``."""
    _, enc, method, protocol = key
    if protocol == "supervised":
        return f"supervised {enc}"
    name = METHOD_TITLES.get(method, method)
    if protocol.startswith("finetune-"):
        return f"{name} {enc} fine-tuned on {protocol.removeprefix('finetune-').replace('%', ' %')} of the labels"
    return f"{name} {enc} + {'linear probe' if protocol == 'linear' else protocol}"


def _encoder_label(key) -> str:
    """``("A", "N1", "vicreg", "linear")`` -> ``"VICReg N1"`` (the encoder a row's protocol ran on)."""
    _, enc, method, _ = key
    return f"{'supervised' if method == 'supervised' else METHOD_TITLES.get(method, method)} {enc}"


def _seen(row) -> int | None:
    """Training images an encoder saw: epochs x images (None when the row does not record its budget)."""
    epochs, images = _int(row.get("encoder_epochs")), _int(row.get("encoder_images"))
    return None if epochs is None or images is None else epochs * images


def _budget(row) -> str:
    text = budget_text(row)
    return "" if text == "—" else f" ({text})"


def _trained(a, b, labels: tuple[str, str], same: bool = False) -> str:
    """"; both encoders trained 4 epochs on 675 images" (or each's, named by ``labels``; ``same``: the two rows
    share one encoder), "" when a row does not record it."""
    said = []
    for row in (a, b):
        epochs, images = _int(row.get("encoder_epochs")), _int(row.get("encoder_images"))
        if epochs is None or images is None:
            return ""
        said.append(f"trained {epochs} epoch{'s' if epochs != 1 else ''} on {images:,} images" if epochs else "untrained")
    if same:
        return f"; one encoder, {said[0]}"
    if said[0] == said[1]:
        return f"; both encoders {said[0]}"
    return f"; the {labels[0]} {said[0]}, the {labels[1]} {said[1]}"


def _with_encoder(key, encoder) -> tuple:
    return (key[0], encoder, *key[2:])


def check_claim(df: pd.DataFrame, claim: Claim, tol: float = 1.0) -> Verdict:
    """The verdict ``df`` gives ``claim``; two accuracies within ``tol`` points are "within noise"."""
    if claim.kind == "epochs":
        return _check_epochs(df, claim, tol)
    keys = (claim.hi, *claim.lo)
    note = ""
    resolved = tuple(resolve_key(df, k) for k in keys)
    stood = sorted({k[1] for k, r in zip(keys, resolved) if k != r})
    if stood:
        keys = resolved
        note = "".join(f" (our {STAND_INS[e]} with the CIFAR stem stands in for {e}: this run has no {e} rows)"
                       for e in stood)
    if any(pick(df, *k) is None for k in keys) and claim.fallback:
        other = tuple(_with_encoder(k, claim.fallback) for k in keys)
        if all(pick(df, *k) is not None for k in other):
            note = f" (with {claim.fallback}: this run has no {claim.hi[1]} rows for it)"
            keys = other
    rows = {k: pick(df, *k) for k in keys}
    missing = [k for k, r in rows.items() if r is None]
    if missing:
        return Verdict(claim, NOT_RUN, f"This run has no {listing([_label(k) for k in missing])} row.")
    hi_key, lo_keys = keys[0], keys[1:]
    hi = rows[hi_key]
    dataset = str(hi.get("dataset", ""))
    on = "" if _coursework_data(hi_key[0], dataset) else f" on {dataset}"

    if claim.kind == "value":
        comp = comparability(hi) if "encoder_epochs" in hi else "no: budget not recorded"
        theirs, ours = _cw(claim.hi), float(hi["top1"])
        evidence = f"Ours{note}: {pct(ours)}{on}{_budget(hi)}."
        if comp.startswith("no: other data"):
            return Verdict(claim, OTHER_DATA, evidence, "A value measured on other data says nothing about "
                                                        "the coursework's.")
        if comp != "yes":
            return Verdict(claim, NOT_COMPARABLE, evidence, f"Our row is {comp.removeprefix('no: ')}.")
        if stood:
            return Verdict(claim, NOT_COMPARABLE, evidence, "Another architecture's value says nothing about the "
                                                            "coursework's.")
        verdict = HELD if ours >= theirs - tol else NOT_HELD
        return Verdict(claim, verdict, f"Ours{note}: {pct(ours)}, {points(ours, theirs, tol)} the coursework's "
                                       f"(noise tolerance ±{tol:.1f} points){_budget(hi)}.")

    lo_key = max(lo_keys, key=lambda k: float(rows[k]["top1"]))  # the strongest competitor
    lo = rows[lo_key]
    a, b = float(hi["top1"]), float(lo["top1"])
    evidence = (f"Ours{note}{on}: {_label(hi_key)} ({pct(a)}) is {points(a, b, tol)} {_label(lo_key)} ({pct(b)})"
                + (", the strongest of the rows it should beat" if len(lo_keys) > 1 else "")
                + f"; noise tolerance ±{tol:.1f} points"
                + _trained(hi, lo, (_encoder_label(hi_key), _encoder_label(lo_key)), hi_key[1:3] == lo_key[1:3])
                + ".")
    if abs(a - b) <= tol:
        return Verdict(claim, NOISE, evidence, "This run cannot tell the two apart.")
    (win_key, win), (lose_key, lose) = ((hi_key, hi), (lo_key, lo)) if a > b else ((lo_key, lo), (hi_key, hi))
    ws, ls = _seen(win), _seen(lose)
    if ws is not None and ls and ws > BUDGET_FACTOR * ls:  # (an untrained loser is what a pretraining claim tests)
        more = f"{ws / ls:,.0f}x"
        return Verdict(claim, NOT_COMPARABLE, evidence,
                       f"The {_encoder_label(win_key)} saw {more} the training images of the "
                       f"{_encoder_label(lose_key)}: "
                       "the gap may be the budget's.")
    return Verdict(claim, HELD if a > b else NOT_HELD, evidence)


def _check_epochs(df: pd.DataFrame, claim: Claim, tol: float) -> Verdict:
    """The epochs claim: the linear probe on A of the encoders kept after 20, 30 and 40 epochs (notebook 04's epochs
    study rows); judged on the claim's encoder if it has all three counts, else on its ``fallback``."""
    set_, _, method, protocol = claim.hi
    counts = claim.lo  # the epoch counts, the claimed best one in the middle
    curves = {}
    for enc in dict.fromkeys((claim.hi[1], claim.fallback, "N1", "ResNet-18")):
        if enc is None:
            continue
        rows = {e: pick(df, set_, enc, method, protocol, epochs=e) for e in counts}
        if any(r is not None for r in rows.values()):
            curves[enc] = rows
    if not curves:
        return Verdict(claim, NOT_RUN, f"This run has no epochs study ({', '.join(map(str, counts))} epochs of "
                                       f"{METHOD_TITLES.get(method, method)}; the coursework preset has one).")
    said = "; ".join(f"{enc}: " + ", ".join(f"{e} epochs {pct(float(r['top1']))}" for e, r in rows.items()
                                            if r is not None) for enc, rows in curves.items())
    full = [enc for enc, rows in curves.items() if all(r is not None for r in rows.values())]
    if not full:
        return Verdict(claim, NOT_RUN, f"Ours (linear probe on {set_}): {said}.",
                       f"No encoder has all of {', '.join(map(str, counts))} epochs.")
    enc = full[0]
    rows = curves[enc]
    note = "" if enc == claim.hi[1] else f" Judged on {enc}: {claim.hi[1]} has no {counts[-1]}-epoch point."
    evidence = f"Ours (linear probe on {set_}, noise tolerance ±{tol:.1f} points): {said}.{note}"
    comp = [comparability(r) for r in rows.values()]
    if any(c.startswith("no: other data") for c in comp):
        return Verdict(claim, OTHER_DATA, evidence, "An epochs curve on other data says nothing about the coursework's.")
    if any(c != "yes" and "epochs" not in c for c in comp):  # fewer epochs than 30 is the study's point, not a defect
        short = next(c for c in comp if c != "yes" and "epochs" not in c)
        return Verdict(claim, NOT_COMPARABLE, evidence, f"Our rows are {short.removeprefix('no: ')}.")
    lo, best, hi = (float(rows[e]["top1"]) for e in counts)
    if hi > best + tol:
        return Verdict(claim, NOT_HELD, evidence, f"{counts[-1]} epochs beat {counts[1]} by more than the noise: "
                                                  "no sign of overfitting.")
    if best > hi + tol and best >= lo - tol:
        return Verdict(claim, HELD, evidence)
    return Verdict(claim, NOISE, evidence, f"This run cannot tell {counts[1]} from {counts[-1]} epochs apart.")


def check_claims(df: pd.DataFrame, tolerance: dict[str, float] | float | None = None,
                 claims: tuple[Claim, ...] = CLAIMS) -> list[Verdict]:
    """Every claim's verdict. ``tolerance``: points per set (or one for all); None: from the data sets'
    names (:func:`~course_lib.results.sizes_from_names`, :func:`noise_tolerance`)."""
    if tolerance is None:
        sizes = sizes_from_names(df)
        tolerance = {s: noise_tolerance(sizes.get(s)) for s in ("A", "B")}
    tol = (lambda s: tolerance) if isinstance(tolerance, (int, float)) else (
        lambda s: tolerance.get(s, noise_tolerance(None)))
    return [check_claim(df, c, tol(c.hi[0])) for c in claims]


def verdict_summary(verdicts: list[Verdict]) -> str:
    """``"2 held, 1 did not hold and 3 not comparable at this budget"`` (the verdicts that occur, in order)."""
    counts = {v: sum(x.verdict == v for x in verdicts) for v in VERDICTS}
    return listing(f"{n} {v}" for v, n in counts.items() if n)


def verdict_table(tables: dict[str, list[Verdict]]) -> pd.DataFrame:
    """One row per claim, one column of verdicts per table (e.g. this run and the real-data one)."""
    names = [v.claim.name for v in next(iter(tables.values()))]
    return pd.DataFrame({title: [v.verdict for v in vs] for title, vs in tables.items()}, index=names)


def verdict_flips(ours: list[Verdict], theirs: list[Verdict]) -> list[str]:
    """The claims whose verdict differs between two tables, as "claim (ours -> theirs)"."""
    return [f'"{a.claim.name}" ({a.verdict} -> {b.verdict})' for a, b in zip(ours, theirs) if a.verdict != b.verdict]
