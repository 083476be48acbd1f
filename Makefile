# Gale's build and test entry points. `make test` is the command CI runs
# (.ci/run). It installs the cloud stand-ins the tests run against
# (scripts/install-standins.sh: the Lambda Runtime Interface Emulator and
# versitygw through the Go module proxy, Azurite through npm, into .tools/;
# Debian's chromium for the dashboard's browser tests),
# then tests the core module and the Beam runner's module with the race
# detector. Everything else the tests use (S3 and GCS protocol servers, DSO
# and Glider servers, the OpenWhisk controller, the Functions host) runs on
# loopback, started by the tests themselves. Slim builds (-tags gale_slim,
# with or without a cloud's tag) are vetted and their tests run too.

GO ?= go

.PHONY: test vet build bench-wordcount screenshots

test: vet
	bash scripts/install-standins.sh
	$(GO) test -race -count=1 -timeout 15m ./...
	$(GO) test -race -count=1 -timeout 10m ./beam/...
	$(GO) test -race -count=1 -tags gale_slim -run 'Slim|LinkedClouds' . ./backends/config
	$(GO) test -race -count=1 -tags gale_slim,gale_aws -run 'Slim|LinkedClouds' . ./backends/config

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "not gofmt-formatted:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags gale_slim ./... ./beam/...
	$(GO) vet -tags gale_slim,gale_aws ./...

build:
	$(GO) build -o bin/gale ./cmd/gale

bench-wordcount:
	$(GO) run ./bench/wordcount

# The dashboard's screenshots in docs/ (docs/ui.md), taken by its browser
# tests in headless Chromium.
screenshots:
	$(GO) test -count=1 -run 'TestLiveDashboard|TestFailedJobView|TestJobList|TestTenThousandTasks' ./ui -args -screenshots=$(CURDIR)/docs/img
