# Gale's build and test entry points. `make test` is the command CI runs
# (.ci/run); it needs only Go: every service the tests use (S3 protocol
# server, DSO and Glider servers) runs in-process on loopback.

GO ?= go

.PHONY: test vet build bench-wordcount

test: vet
	bash scripts/install-standins.sh
	$(GO) test -race -count=1 -timeout 15m ./...
	$(GO) test -race -count=1 -timeout 10m ./beam/...

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "not gofmt-formatted:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

build:
	$(GO) build -o bin/gale ./cmd/gale

bench-wordcount:
	$(GO) run ./bench/wordcount
