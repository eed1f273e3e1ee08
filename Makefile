# The two commands of the README: `make serve` and `make test`. Each bootstraps what it needs.
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
ARGS ?=
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: serve test lint bench protos generate clean

$(VENV)/.installed: pyproject.toml tests/node/package.json
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -U pip uv
	$(BIN)/uv pip install -q --python $(PY) -e '.[dev,chroma,haystack]'
	npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
	touch $@

serve: $(VENV)/.installed
	exec $(BIN)/pgvector-grpc serve $(ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	cd protos && ../$(BIN)/buf lint

test: lint
	$(BIN)/pytest

bench: $(VENV)/.installed
	$(PY) -m benchmarks $(ARGS)

protos: $(VENV)/.installed
	$(PY) scripts/gen_protos.py

# every generated file: protobuf code, and the blocking twins of the asyncio sources
generate: protos
	$(PY) scripts/async_to_sync.py

clean:
	rm -rf $(VENV) tests/node/node_modules .pytest_cache .mypy_cache .ruff_cache
