"""The package's modules depend on each other one way: notebooks -> evaluation/training -> methods, losses,
augmentation -> data, models -> config.

Every ``from . import`` / ``from .x import`` of ``course_lib`` (at the top of a module or inside a
function: a lazy import is still a dependency) is read from the source, and each module may import only
modules of a lower layer. A new module must be given a layer here, which is the point: where it sits is a
decision, not an accident.
"""
import ast
from pathlib import Path

from course_lib import config, data, methods, models

PACKAGE = Path(__file__).resolve().parents[1] / "course_lib"

#: Bottom to top. A module imports only modules of a lower layer.
LAYERS = [
    {"errors", "narrate", "noise"},
    {"config"},
    {"images", "models", "losses", "augment"},  # tensors in, tensors out
    {"realdata"},
    {"data"},
    {"runtime", "distributed"},  # where a network runs: device, precision, processes
    # a run's storage: folder, key, checkpoint, snapshots, caches. Above what it keys and writes with (config, the
    # data's images, distributed's rank 0 and broadcast), below every module that keeps files in a run folder
    # (train, evaluate, studies, pretrain). realdata, lower, keeps its own cache of decoded images (runs.py: why).
    {"runs"},
    {"shipped"},  # trained encoders that ship with the course, written and read as runs writes files
    {"methods"},  # an encoder's heads + a loss
    {"diagnostics"},
    {"train"},  # the training loop
    {"evaluate"},
    {"studies"},  # notebook 07's grids: many trainings and evaluations
    {"results"},  # results rows and their files (metrics/, results.csv)
    {"claims"},  # the coursework's claims, checked: pure functions of a table, no file read
    {"plots", "report"},
    {"run", "colab", "pretrain", "__init__"},  # entry points
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem  # course_lib/losses/vicreg.py -> "losses"


def _imports(path: Path) -> set[str]:
    """The course_lib modules that ``path`` imports (relative or absolute, anywhere in the file)."""
    tree = ast.parse(path.read_text())
    inside = _module_name(path)
    package = len(path.relative_to(PACKAGE).parts) > 1
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x / from .x import y / from .. import x
                base = [] if node.level == 1 and not package else (
                    [inside] if node.level == 1 else [])
                target = node.module.split(".") if node.module else []
                parts = base + target
                names = [parts[0]] if parts else [a.name for a in node.names]
            elif node.module and node.module.split(".")[0] == "course_lib":
                rest = node.module.split(".")[1:]
                names = rest[:1] or [a.name for a in node.names]
            else:
                continue
            found.update(names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == "course_lib" and len(parts) > 1:
                    found.add(parts[1])
    found.discard(inside)
    return found


def test_every_module_has_a_layer():
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    assert modules - RANK.keys() == set(), "give each new module a layer in LAYERS"


def test_dependencies_point_down_only():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = _module_name(path)
        for dep in sorted(_imports(path)):
            if dep in RANK and RANK[dep] >= RANK[me]:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {dep} (layer {RANK[dep]} >= {RANK[me]})")
    assert wrong == []


def test_the_reader_of_imports_sees_lazy_and_relative_imports(tmp_path):
    # the checker itself: a lazy import inside a function counts
    (tmp_path / "course_lib").mkdir()
    f = tmp_path / "course_lib" / "x.py"
    f.write_text("from .config import Config\n\ndef g():\n    from .train import fit\n    from . import data\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "course_lib"
    try:
        assert _imports(f) == {"config", "train", "data"}
    finally:
        PACKAGE = saved


def test_the_name_lists_of_config_match_their_registries():
    # config sits below the modules that implement encoders, datasets and methods, so it lists their names
    assert tuple(models.ENCODERS) == config.ENCODER_NAMES
    assert tuple(data.DATASETS) == config.DATASET_NAMES
    assert tuple(methods.METHODS) == config.METHOD_NAMES
    # one list of method names: the figures' colours and the literature's numbers name no method it lacks
    from course_lib import plots

    assert set(plots.METHOD_COLORS) <= set(config.METHOD_TITLES)
    assert set(methods.LITERATURE_CIFAR10_TOP1) == set(config.SURVEYED_METHODS)
    assert set(config.METHOD_TITLES) - set(config.METHOD_NAMES) == {"supervised", "random-init"}
