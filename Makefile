# Everything a developer or CI runs. `make test` is the README's test command.
GO      ?= go
SQLC    := bin/sqlc
PKGS    := ./...
# The driver matrix: a module of its own, so that lib/pq, mattn/go-sqlite3 and modernc.org/sqlite stay
# out of the library's go.mod (see drivertest/drivertest.go).
DRIVERS := drivertest
# The OpenTelemetry instrumentation and its tests: a module of its own too, so that OpenTelemetry stays
# out of the library's go.mod (see otel/otel.go).
OTEL    := otel

.PHONY: test vet generate check-generated demo bench bench-go fuzz tools clean

test: vet
	$(GO) test -race -count=1 -timeout 30m $(PKGS)
	cd $(DRIVERS) && $(GO) test -race -count=1 -timeout 30m ./...
	cd $(OTEL) && $(GO) test -race -count=1 -timeout 30m ./...

vet:
	$(GO) vet $(PKGS)
	cd $(DRIVERS) && $(GO) vet ./...
	cd $(OTEL) && $(GO) vet ./...

# sqlc is pinned in tools/go.mod and built once into bin/ (it needs cgo; about two minutes).
$(SQLC): tools/go.mod tools/go.sum
	cd tools && CGO_ENABLED=1 $(GO) build -o ../$(SQLC) github.com/sqlc-dev/sqlc/cmd/sqlc

tools: $(SQLC)

generate: $(SQLC)
	$(SQLC) generate

# Fails when the committed generated code differs from what the queries produce.
check-generated: generate
	@git diff --exit-code -- db/ || (echo "generated code is out of date: run make generate and commit" && exit 1)
	@test -z "$$(git status --porcelain -- db/)" || (git status --porcelain -- db/; echo "untracked generated files: run make generate and commit"; exit 1)

demo:
	$(GO) run ./examples/bank

bench:
	$(GO) run ./cmd/esbench -out BENCHMARKS.md

bench-go:
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=60s ./mapper

clean:
	rm -rf bin
