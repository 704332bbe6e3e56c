# syntax=docker/dockerfile:1

# Tidemark: one static binary on a distroless, non-root base image.
#
#   docker build --build-arg VERSION=1.2.3 -t tidemark:1.2.3 .
#   docker run -p 9470:9470 -v tidemark-data:/data tidemark:1.2.3
#
# The same image carries the server (`serve`, the default command) and the
# client for CI jobs and rollout steps:
#
#   docker run --rm -e TIDEMARK_URL -e TIDEMARK_ORG -e TIDEMARK_TOKEN \
#     tidemark:1.2.3 event start deploy-42 --attr service=checkout

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
# Without VERSION the binary keeps the version it was written with.
ARG VERSION
WORKDIR /src

# Dependencies first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w ${VERSION:+-X main.version=${VERSION}}" \
      -o /out/tidemark ./cmd/tidemark

# The data directory, owned by the image's user: a volume created from the
# image (docker run -v NAME:/data) starts with this owner and stays writable.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian13:nonroot
ARG VERSION

LABEL org.opencontainers.image.title="tidemark" \
      org.opencontainers.image.description="Prometheus-compatible time series store with first-class change events" \
      org.opencontainers.image.version="${VERSION}"

COPY --from=build /out/tidemark /tidemark
COPY --from=build --chown=65532:65532 /out/data /data

USER 65532:65532
EXPOSE 9470
VOLUME /data
ENTRYPOINT ["/tidemark"]
# A config file is optional: mount one and add --config.file=PATH (the Helm
# chart in deploy/helm/tidemark does). Without one, the first start creates
# organization "default" and writes an admin token to /data/bootstrap-token.
CMD ["serve", "--storage.path=/data"]
