#!/bin/sh
# install.sh - download, verify and install a lokt release binary.
#
#   curl -fsSL https://raw.githubusercontent.com/lokt-dev/lokt/main/scripts/install.sh | sh
#
# Environment (all optional):
#   LOKT_VERSION      release to install: "latest" (default), "v1.2.3" or "1.2.3"
#   LOKT_INSTALL_DIR  where to put the binary; default /usr/local/bin when it is
#                     writable by you, otherwise ~/.local/bin
#   LOKT_BASE_URL     a mirror of the release files (see "Mirror layout" below);
#                     default: the project's GitHub releases
#   LOKT_DOWNLOADER   force "curl" or "wget"; default: curl if present, else wget
#
# Mirror layout. LOKT_BASE_URL must serve, for every published version TAG
# (the git tag, e.g. v1.2.3, whose VERSION is the tag without the "v"):
#   $LOKT_BASE_URL/latest                                 one line: the newest TAG
#   $LOKT_BASE_URL/TAG/checksums.txt                      goreleaser's SHA-256 list
#   $LOKT_BASE_URL/TAG/lokt_VERSION_OS_ARCH.tar.gz        OS: linux|darwin, ARCH: amd64|arm64
# i.e. copy a release's assets into a directory named after its tag and keep
# the "latest" file pointing at the newest one. Without LOKT_BASE_URL, assets
# come from https://github.com/lokt-dev/lokt/releases/download/TAG/ and
# "latest" is resolved through GitHub's /releases/latest redirect.
#
# The script exits non-zero, and leaves the install directory untouched, when
# a download fails, the archive is not listed in checksums.txt, or its SHA-256
# does not match. Checksums come from the same server as the archive: they
# guard against corrupted or truncated downloads and a tampered mirror file,
# not against a compromised release.

set -eu

REPO_URL="https://github.com/lokt-dev/lokt"
BIN="lokt"
FULL="lokt-full"

say() { printf 'lokt-install: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

tmp=""
stage=""
cleanup() {
	if [ -n "$stage" ] && [ -e "$stage" ]; then rm -f "$stage"; fi
	if [ -n "$tmp" ] && [ -d "$tmp" ]; then rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'cleanup; trap - EXIT; exit 130' INT
trap 'cleanup; trap - EXIT; exit 143' TERM
trap 'cleanup; trap - EXIT; exit 129' HUP

# ---- downloader -----------------------------------------------------------

downloader="${LOKT_DOWNLOADER:-}"
if [ -z "$downloader" ]; then
	if command -v curl >/dev/null 2>&1; then
		downloader=curl
	elif command -v wget >/dev/null 2>&1; then
		downloader=wget
	else
		die "neither curl nor wget is installed; install one of them and retry"
	fi
fi
case "$downloader" in
curl | wget) command -v "$downloader" >/dev/null 2>&1 || die "LOKT_DOWNLOADER=$downloader but $downloader is not installed" ;;
*) die "LOKT_DOWNLOADER must be curl or wget, not '$downloader'" ;;
esac

# fetch URL FILE: download URL to FILE; on failure print why and return 1.
fetch() {
	if [ "$downloader" = curl ]; then
		code=$(curl -sSL --proto '=https,http' --retry 2 --connect-timeout 15 -o "$2" -w '%{http_code}' "$1") || {
			say "could not download $1 (curl exit $?)"
			return 1
		}
		case "$code" in
		2??) return 0 ;;
		404) say "not found (HTTP 404): $1" ;;
		*) say "download failed (HTTP $code): $1" ;;
		esac
		return 1
	fi
	if wget -q --tries=3 --timeout=15 -O "$2" "$1"; then
		return 0
	fi
	rc=$?
	if [ "$rc" -eq 8 ]; then
		say "the server refused $1 (HTTP error such as 404 not found)"
	else
		say "could not download $1 (wget exit $rc)"
	fi
	return 1
}

# effective_url URL: print where URL redirects to (for GitHub's /latest).
effective_url() {
	if [ "$downloader" = curl ]; then
		curl -sSL --retry 2 --connect-timeout 15 -o /dev/null -w '%{url_effective}' "$1"
	else
		wget -S --spider --max-redirect=5 "$1" 2>&1 | sed -n 's/^ *[Ll]ocation: *\([^ ]*\).*/\1/p' | tail -n 1 | tr -d '\r'
	fi
}

# ---- platform -------------------------------------------------------------

os=$(uname -s)
case "$os" in
Linux) os=linux ;;
Darwin) os=darwin ;;
MINGW* | MSYS* | CYGWIN* | Windows_NT)
	die "Windows is not supported by this script; download lokt_VERSION_windows_amd64.zip from $REPO_URL/releases and verify it against checksums.txt" ;;
*) die "unsupported operating system '$os' (supported: Linux, macOS)" ;;
esac

arch=$(uname -m)
case "$arch" in
x86_64 | amd64) arch=amd64 ;;
aarch64 | arm64) arch=arm64 ;;
*) die "unsupported CPU architecture '$arch' (supported: x86_64/amd64, aarch64/arm64)" ;;
esac
# A shell running under Rosetta 2 reports x86_64 on Apple silicon; prefer the
# native binary there.
if [ "$os" = darwin ] && [ "$arch" = amd64 ] &&
	[ "$(sysctl -n sysctl.proc_translated 2>/dev/null || echo 0)" = 1 ]; then
	arch=arm64
fi

# ---- sha256 ---------------------------------------------------------------

if command -v sha256sum >/dev/null 2>&1; then
	sha256() { sha256sum "$1" | awk '{print $1}'; }
elif command -v shasum >/dev/null 2>&1; then
	sha256() { shasum -a 256 "$1" | awk '{print $1}'; }
elif command -v openssl >/dev/null 2>&1; then
	sha256() { openssl dgst -sha256 "$1" | awk '{print $NF}'; }
else
	die "no SHA-256 tool found (need sha256sum, shasum or openssl); refusing to install unverified"
fi

# ---- version --------------------------------------------------------------

tmp=$(mktemp -d 2>/dev/null || mktemp -d -t lokt-install)
[ -d "$tmp" ] || die "could not create a temporary directory"

base="${LOKT_BASE_URL:-}"
base="${base%/}"
want="${LOKT_VERSION:-latest}"

if [ "$want" = latest ]; then
	if [ -n "$base" ]; then
		fetch "$base/latest" "$tmp/latest" || die "could not resolve the latest version from $base/latest (a mirror must serve a 'latest' file holding the newest tag)"
		tag=$(sed -n '1{s/[[:space:]]//g;p;}' "$tmp/latest")
	else
		url=$(effective_url "$REPO_URL/releases/latest") || url=""
		tag="${url##*/}"
	fi
	case "$tag" in
	v[0-9]* | [0-9]*) ;;
	*) die "could not resolve the latest version (got '$tag'); set LOKT_VERSION=vX.Y.Z" ;;
	esac
else
	tag="$want"
fi

case "$tag" in
v*) ;;
*) tag="v$tag" ;;
esac
version="${tag#v}"
case "$version" in
'' | *[!A-Za-z0-9._+-]*) die "invalid version '$want' (expected latest, vX.Y.Z or X.Y.Z)" ;;
esac

[ -n "$base" ] || base="$REPO_URL/releases/download"
archive="${BIN}_${version}_${os}_${arch}.tar.gz"
rel="$base/$tag"

# ---- download and verify --------------------------------------------------

say "installing lokt $tag for $os/$arch from $rel"
fetch "$rel/checksums.txt" "$tmp/checksums.txt" ||
	die "lokt $tag was not found: could not get $rel/checksums.txt (check LOKT_VERSION; releases are listed at $REPO_URL/releases)"

expected=$(awk -v f="$archive" '$2 == f || $2 == "*" f { print $1; exit }' "$tmp/checksums.txt")
[ -n "$expected" ] ||
	die "checksums.txt for $tag has no entry for $archive: no $os/$arch build in this release, or the file is damaged; refusing to install"

fetch "$rel/$archive" "$tmp/$archive" || die "could not download $archive for $tag"

actual=$(sha256 "$tmp/$archive")
expected=$(printf '%s' "$expected" | tr 'A-F' 'a-f')
actual=$(printf '%s' "$actual" | tr 'A-F' 'a-f')
if [ "$actual" != "$expected" ]; then
	die "checksum mismatch for $archive: expected $expected, got $actual; the download is corrupt or was tampered with; refusing to install"
fi
say "verified SHA-256 of $archive"

mkdir "$tmp/x"
tar -xzf "$tmp/$archive" -C "$tmp/x" || die "could not unpack $archive"
[ -f "$tmp/x/$BIN" ] || die "$archive does not contain a '$BIN' binary"
[ -f "$tmp/x/$FULL" ] || die "$archive does not contain a '$FULL' binary"
chmod 0755 "$tmp/x/$BIN" "$tmp/x/$FULL"
"$tmp/x/$BIN" version >/dev/null 2>&1 || die "the downloaded binary does not run on this machine ($os/$arch)"

# ---- install --------------------------------------------------------------

if [ -n "${LOKT_INSTALL_DIR:-}" ]; then
	dir="$LOKT_INSTALL_DIR"
	mkdir -p "$dir" || die "cannot create LOKT_INSTALL_DIR=$dir"
elif [ -d /usr/local/bin ] && [ -w /usr/local/bin ]; then
	dir=/usr/local/bin
else
	[ -n "${HOME:-}" ] || die "HOME is not set; set LOKT_INSTALL_DIR"
	dir="$HOME/.local/bin"
	mkdir -p "$dir" || die "cannot create $dir; set LOKT_INSTALL_DIR"
fi
[ -w "$dir" ] || die "$dir is not writable; set LOKT_INSTALL_DIR or re-run with permission to write there"

# Stage next to the target so the final mv is an atomic rename on one
# filesystem: a reader sees either the old binary or the new one. lokt-full
# (the etcd backend and the MCP server, which lokt hands over to) goes first,
# so a new lokt never finds an old or missing lokt-full beside it.
for b in "$FULL" "$BIN"; do
	stage="$dir/.$b.install.$$"
	cp "$tmp/x/$b" "$stage" || die "could not write to $dir"
	chmod 0755 "$stage"
	mv -f "$stage" "$dir/$b" || die "could not move $b into $dir"
	stage=""
done

say "installed $("$dir/$BIN" version 2>/dev/null | head -n 1) to $dir/$BIN"
case ":${PATH:-}:" in
*":$dir:"*) ;;
*) say "note: $dir is not on your PATH; add it, e.g.: export PATH=\"$dir:\$PATH\"" ;;
esac
