# Hearth: two commands on a fresh Debian 12.
#   make run    install what is needed, build, start the server on 127.0.0.1:7070 (data in ./data),
#               run the quickstart (examples/quickstart.py) against it, keep serving
#   make test   install what is needed, build, run every test (unit + end-to-end)
BUILD_DIR ?= build
LISTEN    ?= 127.0.0.1:7070
DATA_DIR  ?= data
JOBS      ?= $(shell nproc)

.PHONY: deps configure build run test unit e2e bench clean

deps:
	@./scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	@scripts/run.sh $(BUILD_DIR)/src/server/hearth $(LISTEN) $(DATA_DIR)

unit: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

e2e: build
	HEARTH_BUILD_DIR=$(abspath $(BUILD_DIR)) /usr/bin/python3 -m pytest -q tests/e2e

test: unit e2e

bench: build
	HEARTH_BUILD_DIR=$(abspath $(BUILD_DIR)) /usr/bin/python3 bench/job_start_latency.py
	HEARTH_BUILD_DIR=$(abspath $(BUILD_DIR)) env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
		/usr/bin/python3 bench/algorithms.py
	HEARTH_BUILD_DIR=$(abspath $(BUILD_DIR)) /usr/bin/python3 bench/invoke_latency.py
	HEARTH_BUILD_DIR=$(abspath $(BUILD_DIR)) /usr/bin/python3 bench/batch_transform.py
	HEARTH_BUILD_DIR=$(abspath $(BUILD_DIR)) /usr/bin/python3 bench/tuning_strategies.py
	HEARTH_BUILD_DIR=$(abspath $(BUILD_DIR)) /usr/bin/python3 bench/xgboost_tune.py

clean:
	rm -rf $(BUILD_DIR)
