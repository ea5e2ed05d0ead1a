# The two commands of the README. Each bootstraps .venv (pinned versions) on first use.
#   make demo   analyse the bundled sample data on the local Beam runner, train on it, and
#               write its profile report (out/report.html)
#   make test   run the test suite (installs Debian's chromium for the report test)
# and, with the peers in a venv of their own (.venv-bench, the [bench] extra):
#   make bench-quick / make bench   the seed benchmark (benchmarks/README.md)
#   make bench-targets-quick / make bench-targets   issue 14's targets: kdp_beam vs the floor
#   make bench-multivalent-quick / make bench-multivalent   a list per row vs the scalar path
#   make bench-labels-quick / make bench-labels   a target encoding vs frequency counting
#   make bench-transform-quick / make bench-transform   kdp-beam transform vs tf.data map(fs)
# and, for the supported keras range (setup.py):
#   make test-keras KERAS=3.12.0   the tests that build keras layers, against that keras
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

BENCH := .venv-bench
BENCH_STAMP := $(BENCH)/.installed-stamp

.PHONY: demo test test-keras bench bench-quick bench-tools bench-targets bench-targets-quick bench-multivalent bench-multivalent-quick bench-labels bench-labels-quick bench-transform bench-transform-quick lock clean browser

# The report test renders HTML in Debian's chromium; installed here if missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(STAMP): requirements-lock.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-lock.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m pipelines.sample_data --output out/sample --rows 20000 --shards 4
	$(VENV)/bin/kdp-beam analyze --features pipelines/sample/features.json \
	    --input 'out/sample/csv/*.csv' --output out/bundle
	$(VENV)/bin/kdp-beam transform --bundle out/bundle --input 'out/sample/parquet/*.parquet' \
	    --output out/encoded --keep label
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m pipelines.train_example --bundle out/bundle --data 'out/sample/parquet/*.parquet' \
	    --encoded out/encoded
	$(VENV)/bin/kdp-beam report out/bundle --output out/report.html

browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium; }

test: $(STAMP) browser
	$(PY) -m pytest -q tests

# Another keras over .venv's: installed alone into .venv-keras/<version> (keras' own
# dependencies are .venv's; pip check says if that keras does not fit them) and put first
# on PYTHONPATH for the tests that import keras or build kdp_beam's layers.
KERAS ?= $(shell sed -n 's/^keras==//p' requirements-lock.txt)
KERAS_DIR := $(CURDIR)/.venv-keras/$(KERAS)
KERAS_TESTS ?= $(shell grep -rlE --include='test_*.py' 'keras|FeatureSpace|build_preprocessor' tests | sort)

$(KERAS_DIR)/.installed-stamp:
	$(PY) -m pip install --quiet --no-deps --upgrade --target $(KERAS_DIR) keras==$(KERAS)
	touch $@

test-keras: $(STAMP) $(KERAS_DIR)/.installed-stamp
	PYTHONPATH=$(KERAS_DIR):$(CURDIR) $(PY) -m pip check
	PYTHONPATH=$(KERAS_DIR):$(CURDIR) $(PY) -c 'import keras, sys; \
	    sys.exit(keras.__version__ != "$(KERAS)" and f"keras {keras.__version__} from {keras.__file__}, not $(KERAS)")'
	PYTHONPATH=$(KERAS_DIR):$(CURDIR) $(PY) -m pytest -q $(KERAS_TESTS)

$(BENCH_STAMP): benchmarks/requirements-bench-lock.txt setup.py
	test -x $(BENCH)/bin/python || $(PYTHON) -m venv $(BENCH)
	$(BENCH)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH)/bin/python -m pip install --quiet -r benchmarks/requirements-bench-lock.txt
	$(BENCH)/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(BENCH_STAMP)

bench-quick: $(BENCH_STAMP)
	$(BENCH)/bin/python -m benchmarks.run --quick

bench: $(BENCH_STAMP)
	$(BENCH)/bin/python -m benchmarks.run
	$(BENCH)/bin/python -m benchmarks.plot
	$(BENCH)/bin/python -m benchmarks.targets
	$(BENCH)/bin/python -m benchmarks.multivalent
	$(BENCH)/bin/python -m benchmarks.label_aware
	$(BENCH)/bin/python -m benchmarks.transform

# Issue 14's targets (benchmarks/targets.py) need no peer, only kdp_beam's core, psutil and
# matplotlib: they run in .venv-bench if it exists, else in .venv, or in the python given as
# BENCH_PY=<venv>/bin/python (the kdp-beam next to it is the CLI measured; PYTHONPATH is
# this checkout). psutil and matplotlib, if that python lacks them, are installed alone
# into TOOLS (the bench lock's versions), as keras is for test-keras.
BENCH_PY ?= $(if $(wildcard $(BENCH)/bin/python),$(BENCH)/bin/python,$(PY))
TOOLS ?= $(CURDIR)/.venv-tools
TOOL_PINS = $(shell grep -E '^(psutil|matplotlib|contourpy|cycler|fonttools|kiwisolver)==' benchmarks/requirements-bench-lock.txt)

bench-tools: $(if $(filter $(PY),$(BENCH_PY)),$(STAMP))
	PYTHONPATH=$(TOOLS) $(BENCH_PY) -c 'import psutil, matplotlib' 2>/dev/null || \
	    $(BENCH_PY) -m pip install --quiet --no-deps --target $(TOOLS) $(TOOL_PINS)

bench-targets: bench-tools
	PYTHONPATH=$(TOOLS):$(CURDIR) $(BENCH_PY) -m benchmarks.targets

bench-targets-quick: bench-tools
	PYTHONPATH=$(TOOLS):$(CURDIR) $(BENCH_PY) -m benchmarks.targets --quick $(ARGS)

bench-multivalent: bench-tools
	PYTHONPATH=$(TOOLS):$(CURDIR) $(BENCH_PY) -m benchmarks.multivalent

bench-multivalent-quick: bench-tools
	PYTHONPATH=$(TOOLS):$(CURDIR) $(BENCH_PY) -m benchmarks.multivalent --quick

bench-labels: bench-tools
	PYTHONPATH=$(TOOLS):$(CURDIR) $(BENCH_PY) -m benchmarks.label_aware

bench-labels-quick: bench-tools
	PYTHONPATH=$(TOOLS):$(CURDIR) $(BENCH_PY) -m benchmarks.label_aware --quick

bench-transform: bench-tools
	PYTHONPATH=$(TOOLS):$(CURDIR) $(BENCH_PY) -m benchmarks.transform

bench-transform-quick: bench-tools
	PYTHONPATH=$(TOOLS):$(CURDIR) $(BENCH_PY) -m benchmarks.transform --quick

lock:
	$(PY) -m pip freeze --exclude-editable | grep -v '^kdp.beam' > /tmp/kdp_beam_lock.txt
	{ head -2 requirements-lock.txt; cat /tmp/kdp_beam_lock.txt; } > requirements-lock.txt.new
	mv requirements-lock.txt.new requirements-lock.txt

clean:
	rm -rf out .pytest_cache
