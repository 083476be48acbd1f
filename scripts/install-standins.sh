#!/usr/bin/env bash
# Installs the local stand-ins that Gale's tests run against (emulators and
# protocol servers of the cloud platforms) into .tools/ at the repository
# root, which git ignores. `make test` runs it before `go test`; CI runs it
# on a fresh machine. It is idempotent and returns at once when everything
# is installed at the pinned versions.
#
# Each stand-in has one function below, named install_<stand-in>, that
# checks what is installed and installs only what is missing; the calls at
# the end run them all. Network access is limited to the Go module proxy,
# npm and Debian packages.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
mkdir -p "$TOOLS"

# need_debian_packages PKG... installs Debian packages that are missing
# (as root, or through sudo).
need_debian_packages() {
	local missing=()
	for p in "$@"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	local sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null || { echo "install-standins: need the Debian packages ${missing[*]} (run as root)" >&2; return 1; }
		sudo="sudo"
	fi
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Azurite, the Azure Storage emulator (npm package azurite): the Blob store
# tests of backends/azure start .tools/npm/node_modules/.bin/azurite-blob.
AZURITE_VERSION=3.37.0
install_azurite() {
	local bin="$TOOLS/npm/node_modules/.bin/azurite-blob" stamp="$TOOLS/npm/.azurite-version"
	if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$AZURITE_VERSION" ]; then
		return 0
	fi
	if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
		need_debian_packages nodejs npm
	fi
	echo "install-standins: azurite $AZURITE_VERSION (npm)" >&2
	npm install --prefix "$TOOLS/npm" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >/dev/null
	echo "$AZURITE_VERSION" >"$stamp"
}

install_azurite

# go_tool NAME PACKAGE VERSION installs PACKAGE@VERSION with `go install`
# as .tools/bin/NAME, unless that exact version is already there (a stamp
# file beside the binary records it).
go_tool() {
	local name=$1 pkg=$2 version=$3
	local bin="$TOOLS/bin/$name" stamp="$TOOLS/bin/.$name.version"
	if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$pkg@$version" ]; then
		return 0
	fi
	echo "install-standins: $name ($pkg@$version)" >&2
	mkdir -p "$TOOLS/bin"
	GOBIN="$TOOLS/bin" GOWORK=off "${GO:-go}" install "$pkg@$version"
	echo "$pkg@$version" >"$stamp"
}

# AWS: the Lambda Runtime Interface Emulator (the Lambda tests of
# backends/aws and cmd/gale run a pool of them, see internal/awsstandin) and
# versitygw, an S3 gateway that verifies SigV4 and makes real multipart
# ETags. The emulator's module has no semver tags on the proxy: its version
# is the pseudo-version of its latest commit (go list -m
# github.com/aws/aws-lambda-runtime-interface-emulator@latest).
install_aws() {
	go_tool aws-lambda-rie github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie \
		v0.0.0-20261030222936-bef5c4ba774d
	go_tool versitygw github.com/versity/versitygw/cmd/versitygw v1.8.0
}

install_aws

# Headless Chromium (Debian's chromium package) for the dashboard's browser
# tests (ui/, cmd/gale), which drive it through the DevTools protocol.
install_chromium() {
	command -v chromium >/dev/null && return 0
	echo "install-standins: chromium (Debian package)" >&2
	need_debian_packages chromium
}

install_chromium
