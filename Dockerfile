# syntax=docker/dockerfile:1

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, in their own layer, so that code changes reuse it.
COPY go.mod go.sum ./
# Unset, Go's default proxy; make image-test points it at a local module cache.
ARG GOPROXY
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY gen ./gen
COPY internal ./internal
COPY cmd ./cmd
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION}" -o /out/authsvc ./cmd/authsvc

# distroless/static has CA certificates and a nonroot user, and nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/authsvc /usr/local/bin/authsvc
ENV AUTHSVC_ADDR=0.0.0.0:8080
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["authsvc"]
CMD ["serve"]
