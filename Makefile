GO  ?= go
BUF := $(GO) tool -modfile=tools/go.mod buf
GOLANGCI_LINT := $(GO) tool -modfile=tools/go.mod golangci-lint

.PHONY: run test generate lint bench bench-scale build check-generated image-test tools

## run: start authsvc dev on 127.0.0.1:8080 (built-in Wacht emulator, in-memory store)
run: build
	bin/authsvc dev

## test: run every test against a real Postgres (found or started for the run)
test:
	tools/with-postgres.sh $(GO) test -race -count=1 ./...

## build: compile bin/authsvc
build:
	$(GO) build -o bin/authsvc ./cmd/authsvc

## tools: download and compile the pinned tools (buf, the protoc plugins) ahead of their first use
tools:
	$(GO) mod download -modfile=tools/go.mod
	$(BUF) --version
	$(GO) tool -modfile=tools/go.mod protoc-gen-go --version
	$(GO) tool -modfile=tools/go.mod protoc-gen-connect-go --version

## generate: format the protos and regenerate gen/
generate:
	$(BUF) format -w
	$(BUF) generate

## lint: buf lint, go vet, golangci-lint (.golangci.yml: layering, injected clocks, import names) and gofmt
lint:
	$(BUF) lint
	$(GO) vet ./...
	$(GOLANGCI_LINT) run ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

## check-generated: fail if gen/ is not what the protos generate
check-generated: generate
	@git diff --exit-code -- gen proto || { echo "gen/ is stale: run make generate and commit"; exit 1; }
	@untracked=$$(git ls-files --others --exclude-standard -- gen); \
	  if [ -n "$$untracked" ]; then echo "untracked generated files:"; echo "$$untracked"; exit 1; fi

## bench: run the Go benchmarks, then the load harness against bin/authsvc (docs/BENCHMARKS.md; harness flags in BENCHFLAGS)
bench: build
	tools/with-postgres.sh sh -c '$(GO) test -run="^$$" -bench=. -benchmem ./...; rc=$$?; \
	  $(GO) run ./cmd/authsvc-bench -bin bin/authsvc $(BENCHFLAGS) && exit $$rc'

## bench-scale: the scale scenario against bin/authsvc: cold and warm starts on 1 and 3 replicas, 4 minutes each (docs/BENCHMARKS.md; a short run: BENCHFLAGS='-users 2000 -duration 30s')
bench-scale: build
	tools/with-postgres.sh $(GO) run ./cmd/authsvc-bench -bin bin/authsvc -scenario scale $(BENCHFLAGS)

## image-test: build the Dockerfile with podman (local stand-ins for its base images) and prove the image runs (root, Debian)
image-test:
	tools/with-postgres.sh tools/image-test.sh
