# trustack: `make up` runs the cloud, `make test` runs every test.
# Both install what is missing first (scripts/install-deps).

GO          ?= go
BIN         := bin/trustack
DATA        ?= $(CURDIR)/data
LISTEN      ?= 127.0.0.1:5000
NODES       ?= 3
DRIVER      ?= fake
NETWORK     ?= fake
TEST_IMAGE  := build/test-image
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck
# One core for the placement benchmark: GOMAXPROCS=1, pinned where taskset is.
ONE_CORE    := GOMAXPROCS=1 $(shell command -v taskset >/dev/null 2>&1 && echo taskset -c 0)

.PHONY: bench-objects bench-attest bench-firewall bench-volume up test bench bench-sim lint deps build test-image clean

## up: run a whole cloud in this process, with NODES compute hosts of
## DRIVER (fake, or qemu for real VMs) and NETWORK (fake, or linux: each
## host in a network namespace, its guests really networked; root), and
## the test guest as image tiny
## (state in ./data; source data/openrc)
up: deps build test-image
	$(BIN) up --data-dir $(DATA) --listen $(LISTEN) --nodes $(NODES) --driver $(DRIVER) --network $(NETWORK) --test-image $(TEST_IMAGE)

## test: lint, then every test with the race detector (PostgreSQL, the
## OpenStack CLIs, Tempest and QEMU guests included)
test: deps lint test-image
	$(GO) test -race -count=1 -timeout 45m ./...

## bench: measure the APIs under load, guest boots, networks and volumes,
## placement, the firewall and the volume transport (see README, Status)
bench: deps build test-image bench-sim bench-attest bench-firewall bench-volume bench-objects
	$(GO) run ./bench/apibench -trustack $(BIN)

## bench-volume: sequential throughput to a volume through QEMU's block
## layer, opened directly and over NBD with TLS, and as a guest's own I/O
## sees it (a test guest under TCG with one volume of each); and an LVM
## volume's time from its request to being attached to a running guest
## over NBD (median, p99 of 10), its storage host a guest under TCG
bench-volume: deps
	$(GO) test -run '^$$' -bench '^BenchmarkTransport$$' -benchtime 3x -count 3 ./volume/nbd/
	$(GO) test -run '^$$' -bench '^BenchmarkGuestTransport$$' -benchtime 1x -timeout 20m ./volume/nbd/
	$(GO) test -run '^$$' -bench '^BenchmarkCreateAndAttach$$' -benchtime 10x -timeout 30m ./volume/lvm/

## bench-firewall: a host's firewall (as root, in network namespaces): the
## time to enforce a change on 100 ports held to a remote group of 1,000
## members, and a packet's forwarding with no firewall, a rule letting all
## in, and a rule letting the remote group in
bench-firewall: deps
	$(GO) test -run '^$$' -bench 'BenchmarkFirewallChange|BenchmarkVerdict' -benchtime 2s -count 3 ./hostnet/linux/

## bench-objects: the object store on a local cluster of 4 storage nodes
## (3 replicas) on this machine's disk (/var/tmp), its proxy in process:
## 4 KiB PUTs from 64 clients for 20 s against the disk's bound for the
## same durable writes (target 0.8 of it), a 256 MiB object's GET against
## a plain file's read, and the time for a wiped node's peers to restore
## its 2,000 objects of 64 KiB
bench-objects: deps
	$(GO) run ./bench/objbench -dir /var/tmp

## bench-attest: verified attestations per second on one core (a quote's
## signature, incremental replay of 10 new entries on a 5,000-entry log,
## white-list lookups), and quote verification alone; then 10,000 hosts
## (1 in 100 with a real swtpm) attested by three controllers on
## PostgreSQL every 20 s, and the time for a dead controller's hosts to
## be attested by the others
bench-attest: deps
	$(ONE_CORE) $(GO) test -run '^$$' -bench 'BenchmarkVerify$$' -benchtime 3s ./attest/
	$(ONE_CORE) $(GO) test -run '^$$' -bench 'BenchmarkVerifyQuote$$' -benchtime 3s ./tpm/
	$(GO) run ./bench/attestbench -hosts 10000 -controllers 3 -interval 20s

## bench-sim: ACaaS placements per second and latency on one core, in
## memory, at 1,000 and 10,000 hosts, plain and with location and
## isolation requirements (2 requests a host: the cluster does not fill)
bench-sim: build
	@for hosts in 1000 10000; do for mix in plain requirements; do \
		echo "== sim, $$hosts hosts, $$mix"; \
		$(ONE_CORE) $(BIN) sim --hosts $$hosts --requests $$((2 * hosts)) --mix $$mix --seed 1 || exit 1; \
	done; done

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
