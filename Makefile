# The two commands the README opens with:
#   make run    the platform on this machine (ledgerd dev)
#   make test   everything CI runs
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
GO      ?= go
# A count, not a duration: with -fuzztime=10s Go 1.26's fuzz coordinator
# can fail a target with a bare "context deadline exceeded" and no crasher
# when a worker is mid-call at the deadline (golang/go#75804, fixed in Go
# 1.27), which a loaded CI machine hits. 100,000 calls: 5-30 s a target here.
FUZZTIME ?= 100000x

.PHONY: run test build deps vet unit unit-pgbouncer fuzz bench bench-growth clean openapi-check topology topology-down

# The commit for `ledgerd version` when the go command stamps none (a git
# worktree, GOFLAGS=-buildvcs=false); empty outside a git checkout.
COMMIT := $(shell git rev-parse HEAD 2>/dev/null)
DIRTY  := $(shell test -n "$$(git status --porcelain 2>/dev/null)" && echo true)

build:
	$(GO) build -buildvcs=auto -ldflags "-X main.commit=$(COMMIT) -X main.commitDirty=$(DIRTY)" -o bin/ledgerd ./cmd/ledgerd

deps:
	scripts/ensure-deps.sh redis-server haproxy
	scripts/ensure-prometheus.sh

run: deps build
	./bin/ledgerd dev

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

# Tests start their own PostgreSQL from the system binaries (pgcluster);
# -p 2 matches the 2-core machines.
unit:
	$(GO) test -race -count=1 -p 2 -timeout 40m ./...

# The database packages again, every connection of ledgerd going through
# PgBouncer 1.18 in transaction mode (pgcluster.StartPgBouncer; see
# docs/pgbouncer.md): the packages whose tests use the ledgertest harness.
DB_PKGS = $(shell grep -rl --include='*_test.go' 'ledgerd/ledgerd/ledgertest"' . | xargs -n1 dirname | sort -u)

unit-pgbouncer:
	scripts/ensure-pgbouncer.sh
	LEDGERD_TEST_PGBOUNCER=1 $(GO) test -race -count=1 -p 2 -timeout 40m $(DB_PKGS)

fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeTransaction$$' -fuzztime=$(FUZZTIME) ./httpapi
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeBatch$$' -fuzztime=$(FUZZTIME) ./httpapi
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeAccount$$' -fuzztime=$(FUZZTIME) ./httpapi
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeAdminBodies$$' -fuzztime=$(FUZZTIME) ./httpapi
	$(GO) test -run='^$$' -fuzz='^FuzzReadResponse$$' -fuzztime=$(FUZZTIME) ./loadtest
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeBatch$$' -fuzztime=$(FUZZTIME) ./loadtest
	$(GO) test -run='^$$' -fuzz='^FuzzValidateURL$$' -fuzztime=$(FUZZTIME) ./webhook
	$(GO) test -run='^$$' -fuzz='^FuzzVerify$$' -fuzztime=$(FUZZTIME) ./webhook
	$(GO) test -run='^$$' -fuzz='^FuzzParseSchedule$$' -fuzztime=$(FUZZTIME) ./webhook

test: deps vet unit unit-pgbouncer fuzz

bench: deps build
	bench/run-all.sh

# The growth benchmark (bench/growth.sh): p99 of the common requests at
# 1 M and 10 M postings (SIZES="1000000 100000000" for the issue's sizes).
# Not part of bench or test: it takes tens of minutes and gigabytes of disk.
SIZES ?= 1000000 10000000
bench-growth: deps build
	bench/growth.sh $(SIZES)

# The OpenAPI document against ogen (generates and compiles) and Redocly's
# recommended lint rules: about 10 s when the document is unchanged since the
# last run, about a minute after a change (compiling the generated code), so
# not part of `make test`.
openapi-check:
	scripts/check-openapi.sh

# The scaled-out deployment on this machine (docs/scaling.md): primary,
# replica, PgBouncer, three API nodes, HAProxy; topology-down stops it.
topology: build
	scripts/topology.sh up

topology-down:
	scripts/topology.sh down

clean:
	rm -rf bin
