# Two commands do everything: `make book` and `make test` (see README.md).
# Both create .venv from requirements/lock.txt on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
MATHJAX_VERSION := 3.2.2
MATHJAX := .mathjax/node_modules/mathjax/es5/tex-mml-chtml.js

.PHONY: env test lint test-lib test-notebooks book mathjax browser-test lock clean

env: $(STAMP)

# pip would pick the CPU-only torch wheel some machines carry locally, which breaks
# torchvision; uv (installed with an isolated pip) resolves the registry's matching pair.
$(STAMP): requirements/lock.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --isolated --quiet --disable-pip-version-check "uv>=0.5,<1"
	$(UV) pip sync --quiet --python $(PY) requirements/lock.txt
	$(UV) pip install --quiet --python $(PY) --no-deps --config-settings editable_mode=compat -e .
	$(PY) -c "import torch, torchvision, gsa_utils; print('torch', torch.__version__, '| torchvision', torchvision.__version__, '| cuda', torch.cuda.is_available())"
	touch $(STAMP)

test: lint test-lib test-notebooks

# ruff: lint, and formatting as `ruff format` writes it (settings in pyproject.toml;
# notebooks/ruff.toml keeps notebook cells at 88 columns). `ruff format .` fixes the latter.
lint: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test-lib: env
	$(PY) -m pytest tests $(PYTEST_ARGS)

# notebooks/conftest.py stores each notebook that passes in the book's notebook cache
# (_build/.jupyter_cache), so `make book` afterwards does not execute it again.
test-notebooks: env
	$(PY) -m pytest --nbval-lax --nbval-cell-timeout=1800 -p no:cacheprovider notebooks $(PYTEST_ARGS)

# -W: Sphinx warnings are errors; notebooks execute in the profile that fits the machine,
# unless `make test` already executed them under the same profile, library and torch.
# Progress bars are switched off: in a rendered page they are noise.
book: env $(MATHJAX)
	TQDM_DISABLE=1 $(VENV)/bin/jupyter-book build . -W -n --keep-going

# MathJax 3 from npm into the git-ignored .mathjax; the build copies it into the site
# (book/_ext/gsa_book.py), so equations render offline and in CI, without a CDN.
mathjax: $(MATHJAX)

$(MATHJAX):
	@command -v npm >/dev/null || { echo "make mathjax: npm is needed to install MathJax (e.g. apt-get install npm)"; exit 1; }
	npm install --prefix .mathjax mathjax@$(MATHJAX_VERSION) --no-audit --no-fund --loglevel=error

# Every page of _build/html in headless Chromium (Debian's chromium + chromium-driver);
# screenshots in _build/screenshots. See .ci/browser_test.py.
browser-test: env
	$(PY) .ci/browser_test.py _build/html

lock:
	$(UV) pip compile pyproject.toml --extra book --extra medmnist --extra dicom --extra ray -c requirements/constraints.txt \
	  --python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements/lock.txt

clean:
	rm -rf _build
