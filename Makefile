# Gale's build and test entry points. `make test` is the command CI runs
# (.ci/run, with CI=true). It installs the cloud stand-ins the tests run
# against (scripts/install-standins.sh: the Lambda Runtime Interface
# Emulator and versitygw through the Go module proxy, Azurite through npm,
# each built once per version into a cache shared by every clone and
# linked from .tools/; Debian's chromium for the dashboard's browser
# tests), then tests the core module and the Beam runner's
# module together with the race detector, so that one scheduler keeps both
# cores busy across the two. Everything else the tests use (S3 and GCS
# protocol servers, DSO and Glider servers, the OpenWhisk controller, the
# Functions host) runs on loopback, started by the tests themselves. The
# 1 GiB Glider stream runs on its own without the race detector, whose
# shadow memory made it a 6.3 GB process. Slim builds (-tags gale_slim,
# with or without a cloud's tag) are vetted and their tests run too.
#
# The README's Testing section lists what make test needs (tools,
# network, disk, memory) and how long it takes.

GO ?= go

.PHONY: test vet build bench-wordcount screenshots beam-conformance chaos

test: vet
	bash scripts/install-standins.sh
	$(GO) test -race -count=1 -timeout 15m ./... ./beam/...
	$(GO) test -count=1 -run 'TestFileStreamOneGiB' ./glider
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

# Beam's own Go SDK tests (integration primitives and the SDK packages'
# pipeline tests) on Prism and on Gale's local and process backends, as
# one table (docs/beam.md); about an hour on 2 shared cores. `make test`
# runs the primitives (beam/conformance).
beam-conformance:
	$(GO) run ./beam/cmd/beam-conformance

# The fault-injection suite's full matrix (chaos/doc.go): every sample job
# under every fault class at three seeds; `make test` runs its fast subset.
chaos:
	$(GO) test -count=1 -timeout 60m -v ./chaos -full
