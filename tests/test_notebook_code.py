"""The code a student reads in the notebooks is the code the library runs.

Notebook 02 writes VICReg's loss out next to its formula and notebook 04 the linear probe's few lines; the
course's runs call ``course_lib.losses.vicreg_loss`` and ``course_lib.evaluate.fit_linear_head``. These tests
execute the notebooks' own cells (read from the .ipynb files) and compare them with the library's functions.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from course_lib import evaluate
from course_lib.config import resolve
from course_lib.losses import vicreg_loss

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def notebook_function(notebook: str, name: str):
    """Execute the one code cell of ``notebook`` that defines ``name`` and return that function."""
    cells = json.loads((NOTEBOOKS / notebook).read_text())["cells"]
    sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    (source,) = [s for s in sources if f"def {name}(" in s]
    scope: dict = {}
    exec(compile(source, f"{notebook}:{name}", "exec"), scope)
    return scope[name]


@pytest.fixture(scope="module")
def vicreg():
    return notebook_function("02_vicreg_pretraining.ipynb", "vicreg")


@pytest.mark.parametrize("case", ["random", "identical views", "collapsed", "one direction", "wide"])
def test_notebook_02s_vicreg_loss_is_the_librarys(vicreg, case):
    g = torch.Generator().manual_seed(0)
    n, d = (64, 16) if case != "wide" else (32, 128)
    z_a, z_b = torch.randn(n, d, generator=g) * 3, torch.randn(n, d, generator=g)
    if case == "identical views":
        z_b = z_a.clone()
    elif case == "collapsed":
        z_a = z_b = torch.zeros(n, d)
    elif case == "one direction":
        z_a = z_b = torch.randn(n, 1, generator=g) * torch.ones(1, d)
    ours, library = vicreg(z_a, z_b), vicreg_loss(z_a, z_b)["loss"]
    assert torch.allclose(ours, library, rtol=1e-6, atol=1e-6), (float(ours), float(library))


def test_notebook_02s_vicreg_loss_has_the_hand_computed_values(vicreg):
    # collapsed: s = 0, c = 0, v = 1 - sqrt(1e-4) = 0.99 per branch, so 25 x 2 x 0.99
    assert abs(float(vicreg(torch.zeros(8, 4), torch.zeros(8, 4))) - 49.5) < 1e-5
    # two points per dimension at -1 and +1 in both views: std sqrt(2) > 1 (v = 0), one direction: c per branch =
    # (4 x 3 off-diagonal entries of 2^2) / 4 = 12; identical views: s = 0
    z = torch.tensor([[-1.0] * 4, [1.0] * 4])
    assert abs(float(vicreg(z, z)) - 24.0) < 1e-4
    # the weights are the paper's: the invariance term alone, times 25
    a, b = torch.zeros(2, 3), torch.ones(2, 3)
    assert abs(float(vicreg(a, b, mu=0.0, nu=0.0)) - 25.0) < 1e-6


def test_the_gradient_of_notebook_02s_loss_is_the_librarys(vicreg):
    g = torch.Generator().manual_seed(1)
    z_a, z_b = torch.randn(32, 8, generator=g).requires_grad_(), torch.randn(32, 8, generator=g).requires_grad_()
    grads_ours = torch.autograd.grad(vicreg(z_a, z_b), (z_a, z_b))
    grads_lib = torch.autograd.grad(vicreg_loss(z_a, z_b)["loss"], (z_a, z_b))
    for ours, lib in zip(grads_ours, grads_lib):
        assert torch.allclose(ours, lib, atol=1e-6)


@pytest.mark.parametrize("n", [40, 300])  # one ragged batch, several batches
def test_notebook_04s_probe_is_the_librarys_head(n):
    probe = notebook_function("04_evaluation.ipynb", "probe")
    cfg = resolve("test", device="cpu", batch_size=128, probe_epochs=30, seed=3)
    g = torch.Generator().manual_seed(0)
    f = torch.randn(n, 12, generator=g) * torch.linspace(0.1, 5, 12) + 2
    y = (f[:, :4] / torch.linspace(0.1, 5, 12)[:4]).argmax(1)  # classes a linear layer can separate
    ours = probe(f, y, 4, cfg.probe_epochs, cfg.probe_lr, min(cfg.batch_size, n), cfg.seed)
    library = evaluate.fit_linear_head(f, y, 4, cfg)
    assert torch.equal(ours.weight, library.weight) and torch.equal(ours.bias, library.bias)
    # and it learned: on its training embeddings it is far above chance (25 %)
    with torch.no_grad():
        assert (ours(f).argmax(1) == y).float().mean() > 0.5


#: A call into the course's learning code (or torch's): a cell that makes one is about learning representations.
#: studies' verdict helpers (compare, steps, collapsed, seed_spread) only feed sentences: not learning code.
LEARNING = __import__("re").compile(
    r"\b(evaluate|train|plots|diagnostics|methods|models|data|losses|augment)\.\w+\(|torch\.|\.backward\("
    r"|\bstudies\.(?!compare|steps|collapsed|seed_spread)\w+\(|report\.(save|make_row)|\bshow\(")


def code_cells():
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                yield path.name, "".join(cell["source"]), cell.get("metadata", {})


def test_sentence_building_cells_are_folded_and_learning_code_is_not():
    """Issue 19: a cell that only writes sentences (``say``/``choose``) is folded on the site (tag ``hide-input``)
    and in JupyterLab (``source_hidden``); a cell that trains, evaluates or plots is never folded."""
    folded = 0
    for name, source, meta in code_cells():
        hidden = "hide-input" in meta.get("tags", [])
        assert hidden == meta.get("jupyter", {}).get("source_hidden", False), (name, source[:80])
        if LEARNING.search(source) or "resolve(" in source:
            assert not hidden, f"{name}: a cell with learning code is folded: {source[:80]!r}"
        elif "say(" in source:
            assert hidden, (f"{name}: this cell only builds sentences: tag it hide-input and set "
                            f"metadata.jupyter.source_hidden: {source[:80]!r}")
            folded += 1
    assert folded >= 20  # 29 when written: the rule above must keep finding them
