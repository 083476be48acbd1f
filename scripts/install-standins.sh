#!/usr/bin/env bash
# Installs the local stand-ins that Gale's tests run against (emulators and
# protocol servers of the cloud platforms) for the tests to find under
# .tools/ at the repository root, which git ignores. `make test` runs it
# before `go test`; CI runs it on a fresh machine. It is idempotent and
# returns at once when everything is installed at the pinned versions.
#
# The builds themselves are kept in a cache shared by every clone and
# worktree of this user, one directory per stand-in and version
# ($GALE_STANDINS_CACHE, default ~/.cache/gale/standins); .tools/ holds
# links to them. A second clone, or a `git clean -fdx`, costs no rebuild,
# and two clones pinning different versions do not undo each other.
# Installing into the cache is serialized by a lock, so two `make test`
# runs at once do not install over each other.
#
# Each stand-in has one function below, named install_<stand-in>, that
# checks what is installed and installs only what is missing; the calls at
# the end run them all. Network access is limited to the Go module proxy,
# npm and Debian packages.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
CACHE="${GALE_STANDINS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gale/standins}"
mkdir -p "$TOOLS" "$CACHE"

# locked CMD... runs CMD holding the cache's lock.
locked() {
	flock "$CACHE/.lock" "$@"
}

# link TARGET LINK points LINK (under .tools) at TARGET in the cache,
# replacing whatever LINK was (a directory of an older layout included).
link() {
	local target=$1 link=$2
	if [ "$(readlink "$link" 2>/dev/null)" = "$target" ]; then
		return 0
	fi
	mkdir -p "$(dirname "$link")"
	rm -rf "$link"
	ln -s "$target" "$link"
}

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
	# Another apt (a system update, a second checkout's make test) may
	# hold apt's locks: wait for them instead of failing at once.
	local wait=(-o DPkg::Lock::Timeout=600)
	$sudo apt-get "${wait[@]}" update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get "${wait[@]}" install -y -qq "${missing[@]}" >/dev/null
}

# Azurite, the Azure Storage emulator (npm package azurite): the Blob store
# tests of backends/azure start .tools/npm/node_modules/.bin/azurite-blob.
# .tools/npm links to the npm prefix of this version in the cache.
AZURITE_VERSION=3.37.0
install_azurite() {
	local prefix="$CACHE/npm/azurite@$AZURITE_VERSION"
	if [ ! -x "$prefix/node_modules/.bin/azurite-blob" ] || [ ! -e "$prefix/.complete" ]; then
		if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
			need_debian_packages nodejs npm
		fi
		locked bash -c '
			prefix=$1 version=$2
			[ -e "$prefix/.complete" ] && exit 0
			echo "install-standins: azurite $version (npm)" >&2
			rm -rf "$prefix"
			npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "azurite@$version" >/dev/null
			touch "$prefix/.complete"' _ "$prefix" "$AZURITE_VERSION"
	fi
	link "$prefix" "$TOOLS/npm"
}

install_azurite

# go_tool NAME PACKAGE VERSION installs PACKAGE@VERSION with `go install`
# into its own directory of the cache, unless it is there, and links
# .tools/bin/NAME to it.
go_tool() {
	local name=$1 pkg=$2 version=$3
	local dir="$CACHE/go/$name@$version"
	if [ ! -x "$dir/$name" ]; then
		locked env GOBIN="$dir" GOWORK=off bash -c '
			[ -x "$GOBIN/$1" ] && exit 0
			echo "install-standins: $1 ($2@$3)" >&2
			"${GO:-go}" install "$2@$3"' _ "$name" "$pkg" "$version"
	fi
	link "$dir/$name" "$TOOLS/bin/$name"
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
