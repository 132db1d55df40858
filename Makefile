# Two commands do all the set-up on a fresh clone: `make example` and `make test`.
# Both create .venv (with nothing but python3 needed on the machine) on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: example test lint bench schema clean

$(BIN)/graphkit: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(BIN)/graphkit

example: $(BIN)/graphkit
	$(BIN)/graphkit execute examples/sigmoid_neuron.json --inputs examples/sigmoid_neuron.inputs.json --grad

test: $(BIN)/graphkit
	$(BIN)/python -m pytest

lint: $(BIN)/graphkit
	$(BIN)/ruff check graphkit tests benchmarks

bench: $(BIN)/graphkit
	$(BIN)/python -m benchmarks.run

schema: $(BIN)/graphkit
	$(BIN)/python -m graphkit.io.schema > schemas/graph.schema.json

clean:
	rm -rf $(VENV)
