# trustack: `make up` runs the cloud, `make test` runs every test.
# Both install what is missing first (scripts/install-deps).

GO          ?= go
BIN         := bin/trustack
DATA        ?= $(CURDIR)/data
LISTEN      ?= 127.0.0.1:5000
NODES       ?= 3
DRIVER      ?= fake
TEST_IMAGE  := build/test-image
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck

.PHONY: up test bench lint deps build test-image clean

## up: run a whole cloud in this process, with NODES compute hosts of
## DRIVER (fake, or qemu for real VMs), and the test guest as image tiny
## (state in ./data; source data/openrc)
up: deps build test-image
	$(BIN) up --data-dir $(DATA) --listen $(LISTEN) --nodes $(NODES) --driver $(DRIVER) --test-image $(TEST_IMAGE)

## test: lint, then every test with the race detector (PostgreSQL, the
## OpenStack CLIs, Tempest and QEMU guests included)
test: deps lint test-image
	$(GO) test -race -count=1 -timeout 30m ./...

## bench: measure the APIs under load and guest boots (see README, Status)
bench: deps build test-image
	$(GO) run ./bench/apibench -trustack $(BIN)

## test-image: the tiny guest, from Debian packages (made once)
test-image: deps
	scripts/build-test-image $(TEST_IMAGE)

## lint: formatting, vet and staticcheck
lint: deps
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

## deps: install what building, running and testing need (idempotent)
deps:
	scripts/install-deps

build:
	$(GO) build -o $(BIN) ./cmd/trustack

clean:
	rm -rf bin build
