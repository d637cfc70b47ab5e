# Two commands for a newcomer: `make book` and `make test`. Both create/update .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The stamp is rebuilt only when the declared dependencies change, so repeated calls are fast.
STAMP  := $(VENV)/.clothparse-installed
PROFILE ?= default

.PHONY: book test test-fast lint bench env clean-book

env: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# constraints.txt pins every package (torch 2.14.1 / torchvision 0.29.1 come from this machine's disk)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[train,book,onnx,test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

book: $(STAMP)
	$(BIN)/clothparse book --profile $(PROFILE)

# README's and CI's command: lint, then every test
test: lint
	$(BIN)/python -m pytest -q

# the inner loop: everything but the multi-minute tests (book build, resume after a kill, ...)
test-fast: lint
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check clothparse tests bench notebooks

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean-book:
	rm -rf _build book/notebooks book/generated
