GO       ?= go
BIN      ?= spanwatch
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X github.com/spanwatch/spanwatch/internal/buildinfo.Version=$(VERSION) \
            -X github.com/spanwatch/spanwatch/internal/buildinfo.Revision=$(REVISION)
GOLANGCI_LINT_VERSION ?= v2.15.0
FUZZTIME ?= 60s

IMAGE    ?= spanwatch:$(VERSION)
# docker, else podman; override with CONTAINER_ENGINE=...
CONTAINER_ENGINE ?= $(shell command -v docker 2>/dev/null || command -v podman 2>/dev/null)

.PHONY: build test bench lint fuzz ui run image

# The web UI bundle (npm + esbuild), embedded by go:embed; without it the
# binary serves a page that says how to build it.
ui:
	cd ui && npm ci && npm run build

run: ui
	$(GO) run ./cmd/spanwatch serve

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/spanwatch

# The container image (Dockerfile): UI bundle, static binary, distroless
# nonroot runtime. go test ./deploy runs the same Go build without an engine.
image:
	@if [ -z "$(CONTAINER_ENGINE)" ]; then \
	  echo "make image: neither docker nor podman found on PATH (set CONTAINER_ENGINE)" >&2; exit 1; \
	fi
	$(CONTAINER_ENGINE) build --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) -t $(IMAGE) .

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
