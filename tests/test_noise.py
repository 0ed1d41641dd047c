"""The course's one rule for "beyond noise" (course_lib.noise), on hand-made numbers that flip the verdict."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from course_lib import noise, report, studies


def test_the_test_split_term_is_two_standard_errors_at_50_percent():
    assert noise.tolerance(10_000) == pytest.approx(1.0)  # 2 x 50 / sqrt(10,000)
    assert noise.tolerance(226) == pytest.approx(100 / math.sqrt(226))  # 6.65: the digits' set A
    assert noise.tolerance(40_000) == 1.0  # 0.5 by the formula: the floor
    assert noise.tolerance(None) == noise.UNKNOWN == 2.0


def test_the_seeds_term_takes_over_when_the_seeds_disagree_more_than_the_split():
    assert noise.tolerance(10_000, seed_stds=(1.5, 2.0), seeds=3) == pytest.approx(2 * math.sqrt(6.25 / 3))
    assert noise.tolerance(226, seed_stds=(1.5, 2.0), seeds=3) == pytest.approx(100 / math.sqrt(226))
    assert noise.tolerance(10_000, seed_stds=(float("nan"), None), seeds=1) == 1.0  # one seed: no spread known


@pytest.mark.parametrize("a, b, n, expected", [
    (52.0, 50.0, 10_000, "higher"),  # 2 points on 10,000 images: beyond 1.0
    (52.0, 50.0, 226, "same"),  # the same 2 points on 226 images: within 6.65
    (43.0, 50.0, 226, "lower"),  # 7 points: beyond 6.65
    (50.9, 50.0, 10_000, "same"),
])
def test_the_verdict_flips_with_the_numbers_and_the_split(a, b, n, expected):
    tol = noise.tolerance(n)
    assert noise.verdict(a, b, tol) == expected
    assert noise.beyond(a, b, tol) == (expected != "same")


def test_the_report_and_the_studies_use_the_rule():
    for n in (226, 10_000, None):
        assert report.noise_tolerance(n) == noise.tolerance(n)
    # the studies' seed means: 82 +- 2 against 86 +- 1 over 3 seeds; beyond 2.58 points without a split size...
    rows = pd.DataFrame({"top1_a_mean": [82.0, 86.0], "top1_a_std": [2.0, 1.0], "seeds": [3, 3]})
    assert studies.compare(rows.iloc[1], rows.iloc[0])["verdict"] == "higher"
    # ...and within noise once the 226-image test split is counted (6.65 points)
    c = studies.compare(rows.iloc[1], rows.iloc[0], test_images=226)
    assert c["verdict"] == "same" and c["tol"] == pytest.approx(noise.tolerance(226))
