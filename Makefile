# trustack: `make up` runs the cloud, `make test` runs every test.
# Both install what is missing first (scripts/install-deps).

GO          ?= go
BIN         := bin/trustack
DATA        ?= $(CURDIR)/data
LISTEN      ?= 127.0.0.1:5000
NODES       ?= 3
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck

.PHONY: up test bench lint deps build clean

## up: run a whole cloud in this process, with NODES fake compute hosts
## (state in ./data; source data/openrc)
up: deps build
	$(BIN) up --data-dir $(DATA) --listen $(LISTEN) --nodes $(NODES)

## test: lint, then every test with the race detector (PostgreSQL, the
## OpenStack CLIs and Tempest included)
test: deps lint
	$(GO) test -race -count=1 -timeout 30m ./...

## bench: measure the APIs under load (see README, Status)
bench: deps build
	$(GO) run ./bench/apibench -trustack $(BIN)

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
	rm -rf bin
