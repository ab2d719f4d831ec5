# The course in two commands:
#   make course   set up .venv, then run every notebook headless in the profile that fits the machine
#   make test     set up .venv, then lint, run the unit tests and execute every notebook (smoke profile) under nbval
# Other targets: make setup | unit | lint | lab | reference | fetch | benchmark | clean
# Variables: PROFILE=smoke|cpu|gpu (default: from the hardware), PYTHON=python3, ONLY=serving|training|breakdown|batching|keras3 (benchmark).

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

export TF_USE_LEGACY_KERAS = 1
export COLDSTART_QUIET_PROGRESS ?= 1

.PHONY: setup course test unit lint lab reference fetch benchmark clean

$(STAMP): requirements-lock.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-lock.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $(STAMP)
	@echo "Environment ready in $(VENV)"

setup: $(STAMP)

course: $(STAMP)
	$(PY) -m coldstart.tools.course $(if $(PROFILE),--profile $(PROFILE),)

test: lint
	COLDSTART_PROFILE=smoke $(PY) -m pytest tests --nbval-lax --nbval-current-env --nbval-cell-timeout=900 notebooks $(PYTEST_ARGS)

# The unit tests alone, without the slow ones (model loading, training, subprocess runs): a few minutes.
unit: $(STAMP)
	COLDSTART_PROFILE=smoke $(PY) -m pytest tests -m "not slow" $(PYTEST_ARGS)

# ruff, configured in pyproject.toml, on the package, the tests and the notebooks.
lint: $(STAMP)
	$(VENV)/bin/ruff check coldstart tests notebooks

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

# Regenerate the committed outputs: run the course in the cpu profile and copy the executed
# notebooks over notebooks/ and the leaderboard to results/leaderboard.csv.
reference: $(STAMP)
	$(PY) -m coldstart.tools.course --profile cpu --reference

# Offline workshop: fetch the data file and the profile's models into data/ and models/.
fetch: $(STAMP)
	$(PY) -m coldstart.tools.fetch $(if $(PROFILE),--profile $(PROFILE),)

# Speed of the course's training pipeline against a naive one (same model, data and machine), and
# the serving latencies of notebook 07; writes results/benchmarks.json. ONLY=serving|training runs one part;
# ONLY=breakdown times one training step part by part (forward, backward, each Adam); ONLY=batching compares
# the pipeline's batchings (length buckets or length-grouped batches, steps per call, batch size); ONLY=keras3
# times the same two-tower step in tf-keras + transformers and in Keras 3 + KerasHub (notebook 11).
benchmark: $(STAMP)
	$(PY) -m coldstart.tools.speed $(if $(PROFILE),--profile $(PROFILE),) $(if $(ONLY),--only $(ONLY),)

clean:
	rm -rf runs .pytest_cache
