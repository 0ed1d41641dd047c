"""The sentence helpers choose their words from the numbers (hand-computed examples)."""
from course_lib import narrate


def test_points_direction_and_tolerance():
    assert narrate.points(70.6, 68.1) == "2.5 points higher than"
    assert narrate.points(64.8, 70.6) == "5.8 points lower than"
    assert narrate.points(50.2, 50.0) == "about the same as (a difference of 0.2 points)"
    assert narrate.points(50.0, 50.6, tol=1.0).startswith("about the same")
    assert narrate.points(3, 1, more="better", than="off") == "2.0 points better off"


def test_pct_listing_ranking_ratio():
    assert narrate.pct(68.04) == "68.0 %"
    assert narrate.pct(99.95, digits=0) == "100 %"
    assert narrate.listing([]) == "none"
    assert narrate.listing(["a"]) == "a"
    assert narrate.listing(["a", "b", "c"]) == "a, b and c"
    assert narrate.listing(["a", "b"], "or") == "a or b"
    assert narrate.ranking({"MoCo": 50.0, "VICReg": 54.1, "SimCLR": 51.0}) == \
        "VICReg (54.1 %), SimCLR (51.0 %), then MoCo (50.0 %)"
    assert narrate.ranking({"x": 1.0}) == "x (1.0 %)"
    assert narrate.ratio(30, 10) == "3.0x" and narrate.ratio(1, 0) == "n/a"


def test_spread_chance_choose():
    assert narrate.spread([64.5, 64.1, 64.9]) == 64.9 - 64.1
    assert narrate.spread([]) == 0.0
    assert narrate.chance(200) == 0.5 and narrate.chance(10) == 10.0
    assert narrate.choose(1 > 0, "beats", "does not beat") == "beats"
    assert narrate.choose(False, "beats", "does not beat") == "does not beat"
    empty = []  # a text that can only be built when its condition holds: passed as a function, never called
    assert narrate.choose(bool(empty), lambda: f"first {empty[0]}", "none") == "none"
    assert narrate.choose(True, lambda: "built", lambda: empty[0]) == "built"


def test_say_prints_outside_a_notebook(capsys):
    narrate.say("N1 reaches **68.0 %**.")
    assert capsys.readouterr().out == "N1 reaches **68.0 %**.\n"
