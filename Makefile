# The README's two commands: `make demo` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint clean experiments

# torch is installed first and pinned, so that dnnreg's torch>=2.4 never resolves to another
# build. Which build torch==2.13.0 is depends on the index: empty TORCH_INDEX uses pip's
# configured one (a CPU build on this machine and CI); on the public index Linux gets the
# CUDA build, so CPU-only machines pass https://download.pytorch.org/whl/cpu.
TORCH_INDEX ?=
TORCH_FROM := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0 $(TORCH_FROM)
	$(PY) -m pip install --quiet -e '.[test,lint,baselines,onnx,tensorboard,tune,serve]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dnnreg demo --overwrite  # a second `make demo` replaces its own run

test: $(STAMP) lint
	$(PY) -m pytest src tests

# ruff, configured in pyproject.toml: lint rules, then the formatter's check.
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

bench: $(STAMP)
	-$(PY) -m pip install --quiet -e '.[bench]'  # Keras is a peer in one benchmark; optional
	@for f in bench/[!_]*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

# The gallery of the course's claims: docs/experiments.md and its figures, regenerated.
experiments: $(STAMP)
	$(PY) -c "from dnnreg.studies.experiments import gallery; gallery('docs')"

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
