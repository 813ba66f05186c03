# The two commands of the README: `make demo` and `make test`. Everything they need
# is installed here, into .venv, from a clean clone.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?= -n 2 --dist loadgroup --durations=25

.PHONY: setup system-packages sipp demo test test-node test-python serve bench clean

$(STAMP): pyproject.toml sdks/python/pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "byourside needs Python 3.11 or newer (found %s)" % sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,sip]" -e sdks/python
	# The Smart Turn v3 end-of-turn model (BSD-2) ships only inside the pipecat-ai wheel; we read the
	# .onnx file from it and never import pipecat, so none of its dependencies are installed.
	$(BIN)/python -m pip install --quiet --no-deps "pipecat-ai==1.14.0"
	@touch $(STAMP)

setup: $(STAMP)

# Debian packages, installed only when missing: sipp (sip-tester), the far end of the SIP tests,
# espeak-ng, the local voice of every language but English (and the voice when Piper cannot load), and chromium with chromium-driver, the
# browser of the dashboard tests (tests/browser), and nodejs, which runs the Node SDK's tests.
system-packages:
	@command -v sipp >/dev/null 2>&1 && command -v espeak-ng >/dev/null 2>&1 && \
		command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && \
		command -v node >/dev/null 2>&1 || \
		(apt-get update && apt-get install -y sip-tester espeak-ng chromium chromium-driver nodejs)

sipp: system-packages

demo: setup
	$(BIN)/byourside demo

test: setup sipp
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-node

# The Node SDK's tests (unit + against the real server); Node 18+ is required.
test-node: setup
	@command -v node >/dev/null 2>&1 || { echo "error: 'node' (Node.js 18 or newer) is needed for the Node SDK tests; install it (e.g. apt-get install -y nodejs) or run 'make test-python'." >&2; exit 1; }
	@node -e 'const v = +process.versions.node.split(".")[0]; if (v < 18) { console.error("error: the Node SDK needs Node 18+, found " + process.version); process.exit(1); }'
	node --test sdks/node/test/*.test.js

test-python: setup sipp
	$(BIN)/python -m pytest $(PYTEST_ARGS)

serve: setup
	$(BIN)/byourside serve

bench: setup
	$(BIN)/python bench/api.py

clean:
	rm -rf $(VENV) .byourside .pytest_cache

# bench/voice.py with pipecat-ai measured side by side. pipecat-ai lives in its own venv (created
# with pip when missing; never a dependency of byourside); its Silero VAD and Smart Turn models ship
# in its wheel. BENCH_VOICE_ARGS picks the modes and the number of callee turns.
PIPECAT_VENV     ?= /tmp/bys-bench-pipecat
BENCH_VOICE_ARGS ?= --modes fake,local --turns 12

.PHONY: bench-voice

$(PIPECAT_VENV)/.installed:
	$(PYTHON) -m venv $(PIPECAT_VENV)
	$(PIPECAT_VENV)/bin/python -m pip install --quiet 'pipecat-ai[silero]==1.14.*'
	@touch $@

bench-voice: setup sipp $(PIPECAT_VENV)/.installed
	$(BIN)/python bench/voice.py $(BENCH_VOICE_ARGS) --pipecat-python $(PIPECAT_VENV)/bin/python
