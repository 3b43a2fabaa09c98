#!/usr/bin/env bash
# tools.sh - install the pinned release/lint tools lokt's CI uses.
#
#   bash scripts/tools.sh
#
# Go tools are built with `go install` into "$(go env GOPATH)/bin" (GOBIN if
# set); shellcheck comes from the OS package manager. Re-running is cheap: a
# tool already installed at the pinned version is skipped. The version of a
# Go binary is read from its embedded module info (`go version -m`), which
# does not depend on how each tool formats its --version output.
set -euo pipefail

GORELEASER_VERSION=v2.15.1
GOLANGCI_LINT_VERSION=v2.15.0
ACTIONLINT_VERSION=v1.7.12

say() { printf 'tools: %s\n' "$*"; }

command -v go >/dev/null 2>&1 || {
	say "error: go is not on PATH"
	exit 1
}
gobin="$(go env GOBIN)"
[[ -n "$gobin" ]] || gobin="$(go env GOPATH)/bin"

# go_tool BINARY MODULE PACKAGE VERSION
go_tool() {
	local bin="$1" mod="$2" pkg="$3" want="$4" have=""
	if [[ -x "$gobin/$bin" ]]; then
		have="$(go version -m "$gobin/$bin" 2>/dev/null | awk -v m="$mod" '$1 == "mod" && $2 == m { print $3 }')"
	fi
	if [[ "$have" == "$want" ]]; then
		say "$bin $want already installed"
		return 0
	fi
	say "installing $bin $want (found: ${have:-none}) ..."
	# Run outside any module so the project's go.mod cannot influence it.
	(cd / && GOFLAGS='' CGO_ENABLED=0 go install "$pkg@$want")
	have="$(go version -m "$gobin/$bin" | awk -v m="$mod" '$1 == "mod" && $2 == m { print $3 }')"
	if [[ "$have" != "$want" ]]; then
		say "error: $bin reports $have after installing $want"
		exit 1
	fi
	say "$bin $want installed"
}

go_tool goreleaser github.com/goreleaser/goreleaser/v2 github.com/goreleaser/goreleaser/v2 "$GORELEASER_VERSION"
go_tool golangci-lint github.com/golangci/golangci-lint/v2 github.com/golangci/golangci-lint/v2/cmd/golangci-lint "$GOLANGCI_LINT_VERSION"
go_tool actionlint github.com/rhysd/actionlint github.com/rhysd/actionlint/cmd/actionlint "$ACTIONLINT_VERSION"

# ShellCheck: any packaged version (Debian 12 ships 0.9.0); the scripts are
# written to be clean under it.
if command -v shellcheck >/dev/null 2>&1; then
	say "shellcheck $(shellcheck --version | awk '/^version:/ { print $2 }') already installed"
else
	sudo=""
	if [[ "$(id -u)" -ne 0 ]]; then
		command -v sudo >/dev/null 2>&1 || {
			say "error: shellcheck missing and not root (no sudo); install it by hand"
			exit 1
		}
		sudo="sudo"
	fi
	if command -v apt-get >/dev/null 2>&1; then
		say "installing shellcheck with apt-get ..."
		$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
		$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null
	elif command -v brew >/dev/null 2>&1; then
		say "installing shellcheck with brew ..."
		brew install shellcheck
	else
		say "error: shellcheck missing and no apt-get or brew to install it"
		exit 1
	fi
	say "shellcheck $(shellcheck --version | awk '/^version:/ { print $2 }') installed"
fi

case ":$PATH:" in
*":$gobin:"*) ;;
*) say "note: $gobin is not on PATH; scripts/ci-release.sh adds it, other callers must" ;;
esac
