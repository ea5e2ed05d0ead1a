# The two commands of the README. Each bootstraps .venv (pinned versions) on first use.
#   make demo   analyse the bundled sample data on the local Beam runner, then train on it
#   make test   run the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lock clean

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
	$(PY) -m pipelines.train_example --bundle out/bundle --data 'out/sample/parquet/*.parquet'

test: $(STAMP)
	$(PY) -m pytest -q tests

lock:
	$(PY) -m pip freeze --exclude-editable | grep -v '^kdp.beam' > /tmp/kdp_beam_lock.txt
	{ head -2 requirements-lock.txt; cat /tmp/kdp_beam_lock.txt; } > requirements-lock.txt.new
	mv requirements-lock.txt.new requirements-lock.txt

clean:
	rm -rf out .pytest_cache
