# The README's two set-up commands live here:
#   make run    install what is missing, build, start the quickstart on the embedded dev cluster
#   make test   install what is missing, build (warnings are errors), run every test under ASan/UBSan
BUILD      ?= build
TEST_BUILD ?= build-test
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
PYTHON     ?= /usr/bin/python3
JOBS       ?= $(shell nproc)

.PHONY: deps build build-test run test test-stress unit e2e bench bench-ingest bench-tables bench-adaptive bench-partitioned bench-smtp bench-grpc deb format clean demo-signup build-fuzz fuzz fuzz-short

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_WERROR=ON >/dev/null
	@MAKEFLAGS= cmake --build $(BUILD) -j$(JOBS) -- -s --no-print-directory

build-test: deps
	@cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFERRY_SANITIZE=ON -DFERRY_WERROR=ON >/dev/null
	@MAKEFLAGS= cmake --build $(TEST_BUILD) -j$(JOBS) -- -s --no-print-directory

run: build
	@scripts/quickstart.sh $(BUILD)/ferry

# The sign-up example: sign-ups POSTed to a webhook become confirmation e-mails through a local
# SMTP server, which is stopped for a moment without losing one (docs/targets.md).
demo-signup: build
	@scripts/demo-signup.sh $(BUILD)/ferry

unit: build-test
	@cd $(TEST_BUILD) && ctest --output-on-failure -j$(JOBS)

e2e: build-test
	@FERRY_BIN=$(abspath $(TEST_BUILD))/ferry $(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e

test: build unit e2e fuzz-short

# The libFuzzer harnesses of tests/fuzz, built with clang (see docs/fuzzing.md).
build-fuzz: deps
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFERRY_FUZZ=ON -DFERRY_WERROR=ON >/dev/null
	@MAKEFLAGS= cmake --build $(FUZZ_BUILD) -j$(JOBS) --target fuzzers -- -s --no-print-directory

# Each harness for FUZZ_SECONDS (default 60), one after another.
fuzz: build-fuzz
	@scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# Each harness over its seed corpus plus about 5 s of new inputs: the check `make test` runs.
fuzz-short: build-fuzz
	@scripts/fuzz.sh $(FUZZ_BUILD) 5

# `make test` ROUNDS times (default 3) with every core kept busy: see scripts/test-stress.sh.
test-stress:
	@MAKE="$(MAKE)" scripts/test-stress.sh

# A Debian package of the release build: the binary, the systemd unit, /etc/ferry/ferry.yaml and
# the man pages ferry(1) and ferry.yaml(5); written to $(BUILD)/ferry_<version>_<arch>.deb.
deb: build
	@cd $(BUILD) && cpack -G DEB >/dev/null && ls "$$(pwd)"/ferry_*.deb

bench: build
	@bench/run.sh $(BUILD)

bench-ingest: build
	@bench/ingest.sh $(BUILD)

bench-tables: build
	@bench/tables.sh $(BUILD)

bench-adaptive: build
	@bench/adaptive.sh $(BUILD)

bench-partitioned: build
	@bench/partitioned.sh $(BUILD)

bench-smtp: build
	@bench/smtp.sh $(BUILD)

bench-grpc: build
	@bench/grpc.sh $(BUILD)

format:
	@clang-format -i src/*.c src/*/*.c src/*/*.h tests/unit/*.c tests/fuzz/*.c tests/fuzz/*.h

clean:
	@rm -rf $(BUILD) $(TEST_BUILD) $(FUZZ_BUILD)
