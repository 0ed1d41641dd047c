# Two commands do all the set-up on a fresh machine: `make report` and `make test`.
# Override any setting of the main job:  make report ARGS="--preset test -p encoder=N1"

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ARGS   ?=

DATA   ?=
NOTEBOOKS ?= notebooks
# --no-compile: Python compiles a module when it is first imported instead of all ~6 GB of torch's stack at install
# time (measured: torch alone installs in 11 s instead of 31 s)
PIP_FLAGS ?= --no-compile
# ... and keeps what it compiled, in the environment's folder (the working tree gets no __pycache__), even where
# PYTHONDONTWRITEBYTECODE is set, as it is on this machine: without a bytecode cache every process (each notebook's
# kernel, each torchrun worker) compiled torch's stack again, 11-12 s of CPU before its first line (measured on
# 2 cores: `import course_lib` and its modules 15.5-16.6 s, then 5.6-6.6 s with the cache)
unexport PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX := $(abspath $(VENV))/pycache
# make test: the unit tests and the notebooks under nbval in one pytest session on this many pytest-xdist workers,
# each with one torch thread (two threads per worker on 2 cores would wait on each other). A worker takes a whole
# test file, or all eight notebooks in order (04 reuses 01's and 02's runs), longest first (tests/conftest.py).
# Measured from a fresh clone (2026-12-03, 2 cores): 379 s of tests, 562 s with the environment's set-up (.ci/run);
# with the notebooks spread over both workers by file (04 training again the runs 01 and 02 train) and before the
# bytecode cache, 895-901 s of tests
TEST_JOBS ?= 2

.PHONY: report report-cifar coursework coursework-runs progress encoders studies test unit nbval notebooks colab env bench book clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(PIP_FLAGS) -e ".[test]"
	touch $@

# make test's environment in one pip call (a second call, on top of .installed, resolved everything again)
$(VENV)/.installed-reference: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(PIP_FLAGS) -e ".[test,reference,book,book-check]"
	touch $(VENV)/.installed $(VENV)/.installed-book $@

$(VENV)/.installed-book: $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check $(PIP_FLAGS) -e ".[book]"
	touch $@

env: $(VENV)/.installed

## The main job: every notebook in order (papermill), then report/ and figures/ (cpu preset by default).
report: $(VENV)/.installed
	$(PY) -m course_lib.run $(ARGS)

## The coursework's own data (CIFAR-10 -> Tiny ImageNet), cpu-cifar preset: report/cpu-cifar/ and figures/cpu-cifar/.
## DATA is a folder holding cifar10/ (an image folder or cifar-10-batches-py/) and tiny-imagenet-200/.
report-cifar: $(VENV)/.installed
	@test -n "$(DATA)" || { echo "error: set DATA to the folder holding cifar10/ and tiny-imagenet-200/, e.g. make report-cifar DATA=~/data" >&2; exit 2; }
	$(PY) -m course_lib.run --preset cpu-cifar -p "data_root=$(DATA)" $(ARGS)

## The coursework's own budget (coursework preset; N1 ~2.5 h, N2 ~11 h on 2 bf16 CPU cores; resumable): first the
## expensive runs of each encoder of ENCODERS (VICReg kept at 20/30/40 epochs, then the supervised baseline), then
## every notebook (which loads them): report/coursework/ and figures/coursework/. Start it again after a stop: it resumes.
## One encoder's part: make coursework DATA=~/data ENCODERS=N1
ENCODERS ?= N1,N2
## METHODS: which of each encoder's two runs, e.g. METHODS=supervised to finish (or ship) the shorter one first
METHODS ?= vicreg,supervised
coursework-runs: $(VENV)/.installed
	@test -n "$(DATA)" || { echo "error: set DATA to the folder holding cifar10/ and tiny-imagenet-200/, e.g. make coursework DATA=~/data" >&2; exit 2; }
	for enc in $$(echo "$(ENCODERS)" | tr ',' ' '); do \
	    for method in $$(echo "$(METHODS)" | tr ',' ' '); do \
	        $(PY) -m course_lib.pretrain --preset coursework --encoder $$enc --method $$method -p "data_root=$(DATA)" $(ARGS) || exit $$?; \
	    done; \
	done

coursework: coursework-runs
	$(PY) -m course_lib.run --preset coursework -p "data_root=$(DATA)" -p "encoder=$(ENCODERS)" $(ARGS)

## How far every run in runs/ got (finished; or epochs and steps done, training time, what is left at its rate):
## the one look a long run stopped and resumed over several sessions needs. RUNS= another runs folder.
progress: $(VENV)/.installed
	$(PY) -m course_lib.runs $(RUNS)

## Ship the coursework run's encoders (VICReg with its epochs-study encoders, and the supervised baseline) as
## encoders/coursework/<run>.pt, which the notebooks load on a machine without runs of its own (course_lib.shipped).
## Exports the finished runs in runs/ (trains them first when there are none). N1's are committed (float32, ~1.6 MB
## per encoder); N2's are stored in float16 (~22 MB per encoder, course_lib.shipped.HALF_ABOVE).
encoders: $(VENV)/.installed
	@test -n "$(DATA)" || { echo "error: set DATA to the folder holding cifar10/ and tiny-imagenet-200/, e.g. make encoders DATA=~/data" >&2; exit 2; }
	for enc in $$(echo "$(or $(SHIP),N1)" | tr ',' ' '); do \
	    for method in $$(echo "$(METHODS)" | tr ',' ' '); do \
	        $(PY) -m course_lib.pretrain --preset coursework --encoder $$enc --method $$method -p "data_root=$(DATA)" \
	            -p shipped_encoders=false --no-probe --export $(ARGS) || exit $$?; \
	    done; \
	done

## Notebook 07's studies: one setting at a time, 3 seeds per point (digits: ~10 min on 2 cores). Updates only
## report/studies.csv and figures/study_*; finished runs are reused, an interrupted grid resumes.
## Real data: make studies ARGS="--preset cpu-cifar -p data_root=~/data" (hours; README).
studies: $(VENV)/.installed
	$(PY) -m course_lib.run --studies $(ARGS)

## Unit tests (with the lightly parity tests) and the committed notebooks under nbval (test preset:
## notebooks/conftest.py), side by side on TEST_JOBS workers. `make unit` / `make nbval` run one half.
test: $(VENV)/.installed-reference
	OMP_NUM_THREADS=1 $(PY) -m pytest -n $(TEST_JOBS) --dist loadfile --no-loadscope-reorder --nbval-lax \
	  -p no:cacheprovider tests notebooks

unit: $(VENV)/.installed-reference
	$(PY) -m pytest tests

nbval: $(VENV)/.installed
	$(PY) -m pytest --nbval-lax -p no:cacheprovider notebooks

## The course as a static website (Jupyter Book) from the notebooks' stored outputs, nothing re-executed:
## build/book/_build/html/index.html, opens offline. NOTEBOOKS=build/cpu/notebooks shows a `make report` run's.
book: $(VENV)/.installed-book
	$(PY) book/build.py --notebooks "$(NOTEBOOKS)"

## Store the notebooks' outputs from a finished run (what the committed notebooks and the site show): by default
## `make report`'s, FROM=build/coursework/notebooks a real-data run's; FROM= (empty) re-executes them with the test
## preset instead. nbval compares only the cells tagged nbval-check-output, which are the same on every preset.
## ONLY=07 stores only the notebooks whose names contain it (after `course_lib.run --only 07` reran one).
FROM ?= build/cpu/notebooks
notebooks: $(VENV)/.installed
	$(PY) -m course_lib.run --store-outputs $(if $(FROM),--from "$(FROM)") $(if $(ONLY),--only $(ONLY))

## Point every notebook's Colab badge and install cell at pyproject's Repository URL.
colab: $(VENV)/.installed
	$(PY) -m course_lib.colab

bench: $(VENV)/.installed-reference
	$(PY) benchmarks/bench_pretrain.py --out benchmarks/results/$$(hostname)-$$(date +%Y%m%d).json

clean:
	rm -rf build .pytest_cache
