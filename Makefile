# hone — the README's commands. Each does all set-up it needs on a fresh Debian 12 machine and is
# idempotent: a second run installs and rebuilds nothing that is unchanged.
#   make demo    set up, build, train + evaluate the default CNN on Fashion-MNIST, then hone optimize it
#                to 3x faster, 5x smaller, within 1 point on this machine (report: runs/demo-opt/report.html)
#   make test    set up, build, run the whole test suite through ctest
#   make fuzz / make test-sanitize   fuzz every reader / the CPU suite under ASan + UBSan (docs/reliability.md)
#   make gpu-test   on the GPU machine (torch preinstalled, no registry): build with CUDA, ctest -L cuda
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

HONE_VENV ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/hone/venv-torch-2.11.0
PYTHON    ?= $(HONE_VENV)/bin/python
BUILD     ?= build
JOBS      ?= $(shell nproc)
CMAKE_ARGS ?=
DEMO_DIR  ?= runs/demo-cnn
DEMO_EPOCHS ?= 4
DEMO_OPT_DIR ?= runs/demo-opt
DEMO_BUDGET_MINUTES ?= 12

.PHONY: all setup configure build demo test gpu-test fuzz test-sanitize format lint clean

all: build

setup:
	@HONE_VENV="$(HONE_VENV)" bash scripts/setup.sh

# Configure once; re-run cmake only when the build tree is missing (cmake re-checks itself on edits).
$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DHONE_PYTHON="$(PYTHON)" $(CMAKE_ARGS)

configure: setup $(BUILD)/build.ninja

build: configure
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	@if [[ -f "$(DEMO_DIR)/checkpoint/state.json" ]]; then resume=--resume; else resume=; fi; \
	  $(BUILD)/tools/hone/hone train --model cnn --data fashion-mnist --epochs $(DEMO_EPOCHS) -o $(DEMO_DIR) $$resume
	$(BUILD)/tools/hone/hone eval $(DEMO_DIR)
	$(BUILD)/tools/hone/hone optimize $(DEMO_DIR) -o $(DEMO_OPT_DIR) --budget-minutes $(DEMO_BUDGET_MINUTES)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

# docs/reliability.md: libFuzzer harnesses (FUZZ_SECONDS each, default 60) and the CPU suite under
# ASan + UBSan, both in the clang tree build-sanitize (the normal build is untouched).
fuzz: setup
	HONE_PYTHON="$(PYTHON)" bash scripts/fuzz.sh fuzz

test-sanitize: setup
	HONE_PYTHON="$(PYTHON)" bash scripts/fuzz.sh sanitize

# On the lent GPU machine: torch 2.11+cu130 is preinstalled as python3's and nothing can be
# fetched; the header-only/test libraries travel in .gpu-deps (made here by scripts/gpu_deps.sh).
gpu-test:
	cmake -S . -B build-gpu -G Ninja -DHONE_PYTHON=$$(command -v python3) -DHONE_CUDA=ON \
	  -DCMAKE_PREFIX_PATH="$(CURDIR)/.gpu-deps/usr" $(CMAKE_ARGS)
	cmake --build build-gpu -j $(JOBS)
	cd build-gpu && ctest --output-on-failure -L cuda

format:
	find include src tools tests bench -name '*.h' -o -name '*.cpp' -o -name '*.cu' -o -name '*.cuh' | xargs clang-format -i

lint: configure
	find include src tools tests -name '*.h' -o -name '*.cpp' -o -name '*.cu' -o -name '*.cuh' | xargs clang-format --dry-run --Werror
	run-clang-tidy -p $(BUILD) -quiet 'src/.*' 2>/dev/null || clang-tidy -p $(BUILD) --quiet $$(find src -name '*.cpp')

clean:
	rm -rf $(BUILD) build-gpu build-sanitize
