# syntax=docker/dockerfile:1
#
# spanwatch image: the UI bundle (node), a static binary (Go, no cgo), and a
# distroless runtime that runs as the unprivileged "nonroot" user (65532)
# with a read-only root filesystem; the TSDB lives on the /data volume.
#
#   make image                      # docker or podman
#   docker run --read-only -p 4317:4317 -p 4318:4318 -p 8889:8889 -p 8890:8890 \
#     -v spanwatch-data:/data spanwatch:devel
#
# The Go build below is run by deploy/image_test.go without a container
# engine; keep its flags in one RUN line.

# The UI bundle: ui/build.mjs writes internal/web/assets/dist, which the Go
# build embeds.
FROM --platform=$BUILDPLATFORM node:20.20.2-bookworm-slim AS ui
WORKDIR /src/ui
COPY ui/package.json ui/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY ui/ ./
RUN npm run build

FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=devel
ARG REVISION=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
COPY --from=ui /src/internal/web/assets/dist internal/web/assets/dist
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -buildvcs=false -ldflags "-s -w -X github.com/spanwatch/spanwatch/internal/buildinfo.Version=${VERSION} -X github.com/spanwatch/spanwatch/internal/buildinfo.Revision=${REVISION}" -o /out/spanwatch ./cmd/spanwatch
# The data directory, owned by the runtime user, so that an anonymous
# volume created from it is writable.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/spanwatch /usr/local/bin/spanwatch
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
# A relative --storage.path (the default is "data") also lands on the volume.
WORKDIR /data
VOLUME /data
# OTLP/gRPC, OTLP/HTTP, span-metrics exposition, API + UI.
EXPOSE 4317 4318 8889 8890
ENTRYPOINT ["/usr/local/bin/spanwatch"]
CMD ["serve", "--storage.path=/data"]
