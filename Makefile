# kd-repro. `make test` and `make reproduce` each build .venv on a fresh machine by themselves.
# Exact versions come from requirements.lock (ranges live in pyproject.toml). On these machines a
# CPU-only torch 2.13.0 wheel sits in pip's find-links and breaks torchvision; the lock pins the
# pair that works (torch 2.14.1 + torchvision 0.29.1, a CUDA build that also runs on CPU).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PROFILE ?= auto
export REPRO_DATA ?= ./data

.PHONY: venv test reproduce run claims report reference examples bench gpu-prep gpu-check clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -c "import torchvision, timm, repro"
	touch $@

# Unit, property (loss invariants) and end-to-end tests; no data, no GPU needed.
test: venv
	$(BIN)/pytest -m "not claims or invariant" -q

# repro run (train what PROFILE lacks) + pytest -m claims for PROFILE and every other profile with stored
# results (a paper profile trained elsewhere is re-judged, never retrained) + repro report (reports/index.html).
# The loss invariants run with the first profile only. A claim that is not reproduced fails its test; that is
# a finding, not a broken pipeline, so the report is written either way.
reproduce: venv
	$(BIN)/repro run --profile $(PROFILE)
	-only=; for p in $$($(BIN)/repro list --stored-profiles $(PROFILE)); do \
	  REPRO_PROFILE=$$p $(BIN)/pytest -m claims -q $$only; only=tests/test_claims.py; done
	$(BIN)/repro report

# docs/spec-reference.md from the schema and registries (tests/test_reference.py fails when it is stale).
reference: venv
	$(BIN)/python -m repro.cli reference

# The worked examples (examples/claims, profile tiny: real MNIST, small MLPs, minutes on a CPU), kept apart
# from the shipped claims: results, verdicts and report under examples/.
examples: venv
	test -f examples/claims/teacher.pt || $(BIN)/python examples/claims/make_checkpoint.py  # checkpoint-teacher's file (not committed)
	$(BIN)/repro run --claims examples/claims --out examples --profile tiny
	-REPRO_CLAIMS=examples/claims REPRO_OUT=examples REPRO_PROFILE=tiny $(BIN)/pytest -m claims -q tests/test_claims.py
	$(BIN)/repro report --claims examples/claims --out examples

bench: venv
	$(BIN)/python benchmarks/bench.py

# A GPU session is short and its machine bare and offline: `make gpu-prep` (here, with a network) puts what it lacks
# into two git-ignored folders, wheels for pydantic & co. (Python 3.12, the device image's) and MNIST's gz files
# (about 14 MB together); `make gpu-check` (there) runs benchmarks/gpu_check.py into $OUT. See docs/gpu.md.
GPU_WHEELS := pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing_extensions==4.16.0
gpu-prep:
	mkdir -p .gpu-wheels .gpu-data/MNIST/raw
	python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
		-d .gpu-wheels $(GPU_WHEELS)
	cp $(REPRO_DATA)/MNIST/raw/*.gz .gpu-data/MNIST/raw/
	du -sh .gpu-wheels .gpu-data

gpu-check:
	sh benchmarks/gpu-check.sh

clean:
	rm -rf $(VENV) .cache .pytest_cache .hypothesis
