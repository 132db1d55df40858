# Two commands do all the set-up on a fresh clone: `make example` and `make test`.
# Both create .venv (with nothing but python3 needed on the machine) on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := $(wildcard plugins/*/pyproject.toml)

.PHONY: example test lint bench bench-service schema clean

$(BIN)/graphkit: pyproject.toml $(PLUGINS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-build-isolation --no-deps \
		$(foreach p,$(PLUGINS),-e $(dir $(p)))
	touch $(BIN)/graphkit

example: $(BIN)/graphkit
	$(BIN)/graphkit execute examples/sigmoid_neuron.json --inputs examples/sigmoid_neuron.inputs.json --grad

# graphkit's suite, then each plugin package's own suite, from its own folder
test: $(BIN)/graphkit
	$(BIN)/python -m pytest
	@for p in $(dir $(PLUGINS)); do \
		echo "== $$p"; (cd $$p && $(CURDIR)/$(BIN)/python -m pytest) || exit 1; \
	done

lint: $(BIN)/graphkit
	$(BIN)/ruff check graphkit tests benchmarks plugins

# every performance target in one table; e.g. make bench BENCH_ARGS="--only scale --quick"
bench: $(BIN)/graphkit
	$(BIN)/python -m pip install --quiet micrograd threadpoolctl
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

# infer throughput and latency of `graphkit serve` under wrk (apt-get install wrk)
bench-service: $(BIN)/graphkit
	$(BIN)/python -m benchmarks.service_load $(BENCH_ARGS)

schema: $(BIN)/graphkit
	$(BIN)/python -m graphkit.io.schema > schemas/graph.schema.json

clean:
	rm -rf $(VENV)
