GO       ?= go
BIN      ?= spanwatch
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X github.com/spanwatch/spanwatch/internal/buildinfo.Version=$(VERSION) \
            -X github.com/spanwatch/spanwatch/internal/buildinfo.Revision=$(REVISION)
GOLANGCI_LINT_VERSION ?= v2.15.0
FUZZTIME ?= 60s

.PHONY: build test bench lint fuzz ui run

# The web UI bundle (npm + esbuild), embedded by go:embed; without it the
# binary serves a page that says how to build it.
ui:
	cd ui && npm ci && npm run build

run: ui
	$(GO) run ./cmd/spanwatch serve

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/spanwatch

test:
	$(GO) test -race ./...

# Side-by-side benchmark with the OpenTelemetry Collector's spanmetrics connector.
bench:
	cd bench && $(GO) run ./cmd/compare

lint:
	@command -v golangci-lint >/dev/null 2>&1 || $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	golangci-lint run ./...
	cd bench && golangci-lint run ./...

fuzz:
	$(GO) test ./internal/spanmetrics -run '^$$' -fuzz FuzzWireMatchesPdata -fuzztime $(FUZZTIME)
