# Velo — run `make help` for the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Stripped position-independent executables (the .deb ships bin/velo).
LDFLAGS := -s -w -X main.version=$(VERSION)
BUILDFLAGS := -buildmode=pie -ldflags "$(LDFLAGS)"
FUZZTIME ?= 5s
export PATH := /usr/local/go/bin:$(PATH)

.PHONY: help deps build run test fuzz bench peers deb arm64 clean fleet-test
ARCH ?= amd64

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

deps: ## install missing Debian packages (apt-get as root; prints the command otherwise)
	@bash deploy/deps.sh

build: deps ## build bin/velo and bin/camsim
	@mkdir -p $(BIN)
	$(GO) build $(BUILDFLAGS) -o $(BIN)/velo ./cmd/velo
	$(GO) build $(BUILDFLAGS) -o $(BIN)/camsim ./cmd/camsim

run: build ## the demo: three simulated cameras, discovered, probed, then masked and locked by `velo run`
	@bash deploy/demo/run.sh

peers: deps ## install the independent npm ONVIF client used by tests (build/npm)
	@bash deploy/peers.sh

test: deps peers ## install what is missing, then run every test (race detector, matprofile, fuzz seeds, short fuzzing, arm64 under qemu)
	$(GO) vet ./...
	@$(MAKE) --no-print-directory fuzz
	@mkdir -p build
	@# The arm64 sysroot and cross-build, before the tests rather than
	@# during them (CPU-heavy): TestArm64UnderQemu then finds it built.
	@echo "arm64: sysroot and cross-build (deploy/arm64; a few minutes the first time)"
	@VERSION=0.0-arm64test bash deploy/arm64/build.sh > build/arm64-build.log 2>&1 || { tail -40 build/arm64-build.log; exit 1; }
	@set -o pipefail; rc=0; \
	$(GO) test -race -count=1 -timeout 30m -v ./... > build/test.log 2>&1 || rc=$$?; \
	$(GO) test -tags matprofile -count=1 -timeout 10m -v -run 'NoLeakedMats|NoMismatchOverADayOfTheSimulatedSite|EveryTamperOfARunningCameraIsAMismatch|PerFrameTestsSuspectTampers' ./masking/... >> build/test.log 2>&1 || rc=$$?; \
	$(GO) test -count=1 -v -run 'TestDemoReferencesMatchTheSimulator' ./deploy/ >> build/test.log 2>&1 || rc=$$?; \
	grep -E '^(ok|FAIL|panic)|^\s*--- FAIL' build/test.log || true; \
	if [ $$rc -ne 0 ]; then echo "--- go test failed (exit $$rc); what the failed tests said:"; bash deploy/testfailures.sh build/test.log | head -400; \
	  echo "--- last 40 lines of build/test.log:"; tail -40 build/test.log; fi; \
	echo "tests: $$(grep -cE '^\s*--- PASS' build/test.log) passed, $$(grep -cE '^\s*--- FAIL' build/test.log) failed, $$(grep -cE '^\s*--- SKIP' build/test.log) skipped"; \
	exit $$rc

fuzz: ## run every fuzz target for FUZZTIME (default 5s); a failing input fails, a starved fuzz coordinator is retried once
	@GO="$(GO)" bash deploy/fuzz.sh $(FUZZTIME) ./onvif

bench: deps ## measure masking and the pipeline against ffmpeg; prints ratios (docs/masking.md)
	$(GO) run ./cmd/velobench

fleet-test: deps ## scale test of velo fleet: 1,000 simulated gateways (real telemetry + outbox) on a real Mosquitto, then a broker restart (docs/fleet.md)
	@set -o pipefail; VELO_FLEET_N=$${VELO_FLEET_N:-1000} VELO_FLEET_RATE=$${VELO_FLEET_RATE:-0.2} VELO_FLEET_STEADY=$${VELO_FLEET_STEADY:-20s} \
	  $(GO) test -count=1 -timeout 20m -v -run 'TestFleetScale$$' ./fleet/ 2>&1 | grep -v '^{'

deb: build ## build build/deb/velo_<version>_<arch>.deb (ARCH=amd64 or arm64)
	@case "$(ARCH)" in \
	  amd64) VERSION=$(VERSION) bash deploy/deb/build.sh amd64 $(BIN)/velo ;; \
	  arm64) VERSION=$(VERSION) bash deploy/arm64/build.sh >/dev/null && \
	         VERSION=$(VERSION) bash deploy/deb/build.sh arm64 build/arm64/velo build/arm64/sysroot ;; \
	  *) echo "make deb: ARCH must be amd64 or arm64" >&2; exit 2 ;; \
	esac

arm64: deps ## cross-build build/arm64/velo against an arm64 sysroot in build/arm64 (run: deploy/arm64/qemu.sh)
	@VERSION=$(VERSION) bash deploy/arm64/build.sh

clean: ## remove build outputs
	rm -rf $(BIN) build
