# The two commands of the README: `make demo` runs the main job, `make test` the whole suite.
# Both create .venv and install everything on a fresh machine. `make test-isolated` runs the
# suite as a new user meets it: a clone of HEAD with nothing beside it, in a network
# namespace where no service listens (.ci/test-isolated).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-isolated lint bench report clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m relaygraph.demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 3 --dist loadgroup -q

test-isolated: $(STAMP)
	VENV=$(VENV) bash .ci/test-isolated -n 3 --dist loadgroup -q

# `make bench` runs every benchmark (each saves bench/results/<name>.json), then the report;
# `make report` only redraws docs/img/bench-*.png and docs/benchmarks.md's tables from them.
BENCHMARKS := $(filter-out bench/report.py,$(wildcard bench/[!_]*.py))

bench: $(STAMP)
	@for script in $(BENCHMARKS); do echo "== $$script"; $(BIN)/python $$script || exit 1; done
	$(BIN)/python bench/report.py

report: $(STAMP)
	$(BIN)/python bench/report.py

clean:
	rm -rf $(VENV)
