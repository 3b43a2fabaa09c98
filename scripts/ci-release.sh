#!/usr/bin/env bash
# ci-release.sh - lokt's release chain, end to end, with nothing published.
#
#   bash scripts/tools.sh && bash scripts/ci-release.sh
#
# Steps (fails fast; prints a summary either way):
#   lint-scripts     shellcheck scripts/*.sh
#   lint-workflows   actionlint .github/workflows/*.yml
#   goreleaser-check goreleaser check (a deprecation is a failure)
#   snapshot         goreleaser release --snapshot --clean, then checks dist/
#   packaged-docs    completions (bash, zsh, fish), man pages and LICENSE are
#                    in every unix archive, the .deb, the .rpm and the formula
#   binary-smoke     go build with the .goreleaser.yaml flags; run version,
#                    doctor and lock/status/unlock; byte-compare with the
#                    goreleaser binary for this host (reproducible build)
#   mirror           lay dist/ out as an install.sh mirror, serve it on a
#                    random 127.0.0.1 port
#   install          install.sh (latest, pinned, wget) into temp dirs, run the
#                    installed binary through the same checks
#   install-refusals tampered archive, missing checksum entry and unknown
#                    version must fail cleanly and install nothing
#
# Needs: go, git (a repository with at least one commit; no tag or remote),
# goreleaser, actionlint and shellcheck (scripts/tools.sh), curl, wget, tar.
#
# LOKT_SMOKE_ALLOW_NO_DOCTOR=1 lets the smoke tests pass when the binary has
# no `doctor` command at all (it answers "unknown command"). Default 0: doctor
# is required. A doctor that exists but fails is always a failure.
set -Eeuo pipefail

ALLOW_NO_DOCTOR="${LOKT_SMOKE_ALLOW_NO_DOCTOR:-0}"
# The install tests set these themselves; a caller's values must not leak in.
unset LOKT_VERSION LOKT_BASE_URL LOKT_INSTALL_DIR LOKT_DOWNLOADER LOKT_ROOT
LOCK_NAME="ci-release-smoke"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
command -v go >/dev/null 2>&1 || {
	echo "ci-release: go is not on PATH" >&2
	exit 1
}
gobin="$(go env GOBIN)"
[[ -n "$gobin" ]] || gobin="$(go env GOPATH)/bin"
export PATH="$gobin:$PATH"

work="$(mktemp -d "${TMPDIR:-/tmp}/lokt-ci-release.XXXXXX")"
server_pid=""
t0=$SECONDS

# ---- step bookkeeping and cleanup ------------------------------------------

steps=()
results=()
current=""
current_t0=0
notes=()

begin() {
	current="$1"
	current_t0=$SECONDS
	printf '\n=== %s\n' "$current"
}
pass() {
	steps+=("$current")
	results+=("PASS  $(printf '%4ds' $((SECONDS - current_t0)))")
	current=""
}
note() {
	notes+=("$*")
	printf '    note: %s\n' "$*"
}
fail() {
	printf '    FAIL: %s\n' "$*" >&2
	exit 1
}

finish() {
	local rc=$?
	set +e
	if [[ -n "$server_pid" ]]; then
		kill "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
	fi
	rm -rf "$work"
	if [[ -n "$current" ]]; then
		steps+=("$current")
		results+=("FAIL  $(printf '%4ds' $((SECONDS - current_t0)))")
	fi
	printf '\n=== summary (%ds)\n' $((SECONDS - t0))
	local i
	for i in "${!steps[@]}"; do
		printf '  %-18s %s\n' "${steps[$i]}" "${results[$i]}"
	done
	for i in "${notes[@]+"${notes[@]}"}"; do
		printf '  note: %s\n' "$i"
	done
	if [[ $rc -eq 0 ]]; then
		printf 'ci-release: all steps passed\n'
	else
		printf 'ci-release: FAILED (exit %d)\n' "$rc"
	fi
	exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run_log LOGFILE CMD...: run CMD with output to LOGFILE; on failure show its
# tail and fail the step.
run_log() {
	local log="$1"
	shift
	if ! "$@" >"$log" 2>&1; then
		tail -n 40 "$log" >&2
		fail "command failed: $*"
	fi
}

# bounded CMD...: run with a 60s limit where timeout(1) exists, so a hung
# lokt (say, a lock that waits) cannot stall CI.
bounded() {
	if command -v timeout >/dev/null 2>&1; then
		timeout 60 "$@"
	else
		"$@"
	fi
}

# json_get FILE KEY: a top-level field of a JSON object, as text.
json_get() {
	if command -v jq >/dev/null 2>&1; then
		jq -r --arg k "$2" '.[$k] | tostring' "$1"
	else
		python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print(v if not isinstance(v,bool) else str(v).lower())' "$1" "$2"
	fi
}

sha256_of() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$1" | awk '{print $1}'
	else
		shasum -a 256 "$1" | awk '{print $1}'
	fi
}

# exercise BIN LABEL: what every lokt we ship must do. Checks version output
# against $want_version/$want_commit/$want_date.
exercise() {
	local bin="$1" label="$2" root out rc
	root="$(mktemp -d "$work/root-$label.XXXXXX")"
	out="$work/out-$label"

	bounded "$bin" version >"$out" 2>&1 || { cat "$out" >&2; fail "$label: 'lokt version' failed"; }
	grep -qF -- "$want_version" "$out" || { cat "$out" >&2; fail "$label: 'lokt version' does not mention $want_version"; }

	bounded "$bin" version --json >"$out.json" 2>"$out.err" || { cat "$out.json" "$out.err" >&2; fail "$label: 'lokt version --json' failed"; }
	local k want got
	for k in version commit date protocol_version; do
		case "$k" in
		version) want="$want_version" ;;
		commit) want="$want_commit" ;;
		date) want="$want_date" ;;
		protocol_version) want=1 ;;
		esac
		got="$(json_get "$out.json" "$k" 2>/dev/null)" || got="(unparsable JSON)"
		[[ "$got" == "$want" ]] || { cat "$out.json" >&2; fail "$label: version --json $k is '$got', want '$want'"; }
	done
	echo "    $label: version ok ($want_version, ${want_commit:0:12}, $want_date)"

	rc=0
	LOKT_ROOT="$root" bounded "$bin" doctor >"$out" 2>&1 || rc=$?
	if [[ $rc -ne 0 ]]; then
		if [[ "$ALLOW_NO_DOCTOR" == 1 ]] && grep -qiE 'unknown (sub)?command' "$out"; then
			note "$label: 'lokt doctor' does not exist yet; tolerated because LOKT_SMOKE_ALLOW_NO_DOCTOR=1"
		else
			cat "$out" >&2
			fail "$label: 'lokt doctor' exited $rc (set LOKT_SMOKE_ALLOW_NO_DOCTOR=1 only to tolerate a missing doctor command)"
		fi
	else
		echo "    $label: doctor ok"
	fi

	LOKT_ROOT="$root" bounded "$bin" lock "$LOCK_NAME" --pid 0 --ttl 1m >"$out" 2>&1 ||
		{ cat "$out" >&2; fail "$label: 'lokt lock $LOCK_NAME --pid 0 --ttl 1m' failed"; }
	LOKT_ROOT="$root" bounded "$bin" status >"$out" 2>&1 || { cat "$out" >&2; fail "$label: 'lokt status' failed"; }
	grep -qF -- "$LOCK_NAME" "$out" || { cat "$out" >&2; fail "$label: 'lokt status' does not list $LOCK_NAME after lock"; }
	LOKT_ROOT="$root" bounded "$bin" unlock "$LOCK_NAME" >"$out" 2>&1 || { cat "$out" >&2; fail "$label: 'lokt unlock $LOCK_NAME' failed"; }
	LOKT_ROOT="$root" bounded "$bin" status >"$out" 2>&1 || { cat "$out" >&2; fail "$label: 'lokt status' after unlock failed"; }
	if grep -qF -- "$LOCK_NAME" "$out"; then
		cat "$out" >&2
		fail "$label: 'lokt status' still lists $LOCK_NAME after unlock"
	fi
	echo "    $label: lock -> status -> unlock ok"
}

# ---- preflight ---------------------------------------------------------------

begin preflight
for tool in go git goreleaser actionlint shellcheck curl wget tar; do
	command -v "$tool" >/dev/null 2>&1 || fail "$tool not found (run: bash scripts/tools.sh)"
done
git rev-parse --verify -q HEAD >/dev/null || fail "goreleaser needs a git repository with at least one commit"
# goreleaser reads the remote URL and, when there is none (a repository made
# with `git init`), silently drops all git info in snapshot mode: commit
# "none", date 0001-01-01. Supply one through git's environment config for
# this run only; the repository's own config is not touched.
if ! git ls-remote --get-url >/dev/null 2>&1; then
	n="${GIT_CONFIG_COUNT:-0}"
	export "GIT_CONFIG_KEY_$n=remote.origin.url" "GIT_CONFIG_VALUE_$n=https://github.com/lokt-dev/lokt.git"
	export GIT_CONFIG_COUNT=$((n + 1))
	note "no git remote: using remote.origin.url=https://github.com/lokt-dev/lokt.git for this run"
fi
host_os="$(go env GOOS)"
host_arch="$(go env GOARCH)"
want_commit="$(git rev-parse HEAD)"
# goreleaser's {{ .CommitDate }}: committer date, UTC, RFC 3339.
want_date="$(TZ=UTC git show -s --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd HEAD)"
echo "    host $host_os/$host_arch, commit $want_commit ($want_date), $(goreleaser --version 2>/dev/null | awk '/GitVersion/ {print "goreleaser " $2}')"
pass

begin lint-scripts
shellcheck scripts/*.sh || fail "shellcheck found problems"
pass

begin lint-workflows
actionlint .github/workflows/*.yml || fail "actionlint found problems"
pass

begin goreleaser-check
# Exit 1: invalid; exit 2: "valid, but uses deprecated properties". Both fail.
run_log "$work/check.log" goreleaser check
pass

begin snapshot
run_log "$work/goreleaser.log" goreleaser release --snapshot --clean
snap_version="$(json_get dist/metadata.json version)"
[[ -n "$snap_version" && "$snap_version" != null ]] || fail "no version in dist/metadata.json"
echo "    snapshot version $snap_version"
(cd dist && if command -v sha256sum >/dev/null 2>&1; then sha256sum -c --quiet checksums.txt; else shasum -a 256 -c --quiet checksums.txt; fi) || fail "dist/checksums.txt does not match the files"
for target in linux_amd64 linux_arm64 darwin_amd64 darwin_arm64; do
	a="lokt_${snap_version}_${target}.tar.gz"
	[[ -f "dist/$a" ]] || fail "missing dist/$a"
	grep -qE "^[0-9a-f]{64}  $a\$" dist/checksums.txt || fail "$a not in checksums.txt"
	# Listed first: grep -q would stop reading and fail tar under pipefail.
	listing="$(tar -tzf "dist/$a")"
	grep -qx lokt <<<"$listing" || fail "$a has no top-level lokt binary"
	grep -qx lokt-full <<<"$listing" || fail "$a has no top-level lokt-full binary"
done
a="lokt_${snap_version}_windows_amd64.zip"
[[ -f "dist/$a" ]] || fail "missing dist/$a"
grep -qE "  $a\$" dist/checksums.txt || fail "$a not in checksums.txt"
formula=dist/homebrew/Formula/lokt.rb
[[ -f "$formula" ]] || fail "goreleaser did not render $formula"
grep -q 'test do' "$formula" || fail "$formula has no test block"
grep -q 'LOKT_ROOT' "$formula" || fail "$formula test does not pin LOKT_ROOT"
ls dist/*.deb dist/*.rpm >/dev/null 2>&1 || fail "no .deb/.rpm packages in dist/"
echo "    $(grep -c . dist/checksums.txt) checksummed artifacts, formula $formula"
pass

begin packaged-docs
# What gendocs generates and every package must carry: the three completion
# scripts (with a line that proves each is the real thing) and a man page
# per command.
man_pages=(lokt lokt-lock lokt-unlock lokt-guard lokt-status lokt-freeze lokt-doctor)
# check_completion NAME: stdin is the completion script NAME from a package.
check_completion() {
	case "$1" in
	lokt.bash) grep -q 'complete .*-F __start_lokt lokt' ;;
	_lokt) grep -q '^#compdef lokt' ;;
	lokt.fish) grep -q '^complete -c lokt' ;;
	esac
}
for target in linux_amd64 linux_arm64 darwin_amd64 darwin_arm64; do
	a="dist/lokt_${snap_version}_${target}.tar.gz"
	listing="$(tar -tzf "$a")"
	for f in LICENSE completions/lokt.bash completions/_lokt completions/lokt.fish; do
		grep -qx "$f" <<<"$listing" || fail "$a has no $f"
	done
	for c in lokt.bash _lokt lokt.fish; do
		tar -xzOf "$a" "completions/$c" | check_completion "$c" || fail "$a: completions/$c is not a lokt $c completion script"
	done
	for m in "${man_pages[@]}"; do
		grep -qx "manpages/$m.1.gz" <<<"$listing" || fail "$a has no manpages/$m.1.gz"
	done
	tar -xzOf "$a" manpages/lokt-guard.1.gz | gzip -dc | grep -q '^\.TH "LOKT" "1"' || fail "$a: manpages/lokt-guard.1.gz is not a man page"
done
echo "    archives: LICENSE, 3 completions, ${#man_pages[@]}+ man pages in each unix archive"

# Files each Linux package installs (the zsh one depends on the packager).
pkg_common=(/usr/bin/lokt /usr/bin/lokt-full /usr/share/bash-completion/completions/lokt /usr/share/fish/vendor_completions.d/lokt.fish /usr/share/doc/lokt/LICENSE)
for m in "${man_pages[@]}"; do pkg_common+=("/usr/share/man/man1/$m.1.gz"); done
deb="$(find dist -maxdepth 1 -name '*amd64.deb' | head -n 1)"
[[ -n "$deb" ]] || fail "no amd64 .deb in dist/"
if command -v dpkg-deb >/dev/null 2>&1; then
	deb_list="$(dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's#^\./#/#')"
else
	mkdir -p "$work/deb" && (cd "$work/deb" && ar x "$repo/$deb")
	deb_list="$(tar -tf "$work"/deb/data.tar.* | sed 's#^\./#/#')"
fi
for f in "${pkg_common[@]}" /usr/share/zsh/vendor-completions/_lokt; do
	grep -qx "$f" <<<"$deb_list" || fail "$deb does not install $f"
done
rpm_file="$(find dist -maxdepth 1 -name '*x86_64.rpm' | head -n 1)"
[[ -n "$rpm_file" ]] || fail "no x86_64 .rpm in dist/"
if command -v rpm >/dev/null 2>&1; then
	rpm_list="$(rpm -qlp "$rpm_file" 2>/dev/null)"
	for f in "${pkg_common[@]}" /usr/share/zsh/site-functions/_lokt; do
		grep -qx "$f" <<<"$rpm_list" || fail "$rpm_file does not install $f"
	done
else
	# Without rpm(8): the header (uncompressed) stores every file as a
	# directory name plus a base name; both must be there.
	for f in "${pkg_common[@]}" /usr/share/zsh/site-functions/_lokt; do
		if ! LC_ALL=C grep -aqF "$(dirname "$f")/" "$rpm_file" || ! LC_ALL=C grep -aqF "$(basename "$f")" "$rpm_file"; then
			fail "$rpm_file does not install $f"
		fi
	done
	note "rpm(8) not installed: the .rpm's file list was checked in its header by name"
fi
echo "    packages: $(basename "$deb") and $(basename "$rpm_file") install the completions, man pages and LICENSE"

for want in 'license "Apache-2.0"' 'bin.install "lokt", "lokt-full"' 'bash_completion.install "completions/lokt.bash"' 'zsh_completion.install "completions/_lokt"' \
	'fish_completion.install "completions/lokt.fish"' 'man1.install Dir["manpages/*.1.gz"]'; do
	grep -qF -- "$want" "$formula" || fail "$formula lacks: $want"
done
echo "    formula: license, completions and man pages installed"
pass

begin binary-smoke
# The flags of .goreleaser.yaml `builds`, spelled out.
want_version="$snap_version"
mkdir -p "$work/smoke"
CGO_ENABLED=0 go build -trimpath -tags lokt_slim \
	-ldflags "-s -w -X github.com/lokt-dev/lokt/internal/version.Version=$want_version -X github.com/lokt-dev/lokt/internal/version.Commit=$want_commit -X github.com/lokt-dev/lokt/internal/version.Date=$want_date" \
	-o "$work/smoke/lokt" ./cmd/lokt || fail "go build with the goreleaser flags failed"
exercise "$work/smoke/lokt" smoke
gr_bin="$(find dist -path "*/lokt_${host_os}_${host_arch}*/lokt" -type f | head -n 1)"
if [[ -z "$gr_bin" ]]; then
	note "no goreleaser build for $host_os/$host_arch; byte comparison skipped"
elif cmp -s "$gr_bin" "$work/smoke/lokt"; then
	echo "    reproducible: $gr_bin is byte-identical to the smoke build"
else
	fail "$gr_bin differs from 'go build' with the same flags: .goreleaser.yaml and this script disagree, or the build is not reproducible"
fi
pass

begin mirror
# Mirror layout (documented in scripts/install.sh):
#   good/latest                 newest tag
#   good/TAG/checksums.txt, good/TAG/lokt_VERSION_OS_ARCH.tar.gz
# plus two broken mirrors of the same TAG for the refusal tests.
tag="v$snap_version"
mirror="$work/mirror"
host_archive="lokt_${snap_version}_${host_os}_${host_arch}.tar.gz"
mkdir -p "$mirror/good/$tag" "$mirror/tampered/$tag" "$mirror/missing/$tag"
cp dist/checksums.txt dist/*.tar.gz dist/*.zip "$mirror/good/$tag/"
printf '%s\n' "$tag" >"$mirror/good/latest"
cp "$mirror/good/$tag/"* "$mirror/tampered/$tag/"
printf '%s\n' "$tag" >"$mirror/tampered/latest"
printf 'tampered' >>"$mirror/tampered/$tag/$host_archive"
cp "$mirror/good/$tag/"* "$mirror/missing/$tag/"
printf '%s\n' "$tag" >"$mirror/missing/latest"
grep -vF "  $host_archive" "$mirror/good/$tag/checksums.txt" >"$mirror/missing/$tag/checksums.txt"

go build -o "$work/servedist" scripts/internal/servedist/main.go || fail "could not build the mirror server"
"$work/servedist" -dir "$mirror" -addr-file "$work/addr" -lifetime 10m 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 1 100); do
	[[ -s "$work/addr" ]] && break
	kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; fail "mirror server exited"; }
	sleep 0.1
done
[[ -s "$work/addr" ]] || fail "mirror server did not start within 10s"
base="$(cat "$work/addr")"
curl -fsS "$base/good/latest" >/dev/null || fail "mirror not reachable at $base"
echo "    serving $mirror at $base (pid $server_pid)"
pass

begin install
# 1. Default path: "latest", curl, /bin/sh (dash on Debian).
# Each run gets its own TMPDIR, which must be empty again afterwards.
dir1="$work/inst1/bin"
mkdir -p "$work/tmp-inst1"
env -u LOKT_VERSION TMPDIR="$work/tmp-inst1" LOKT_BASE_URL="$base/good" LOKT_INSTALL_DIR="$dir1" \
	sh scripts/install.sh >"$work/install1.log" 2>&1 || { cat "$work/install1.log" >&2; fail "install.sh (latest) failed"; }
cat "$work/install1.log"
[[ -z "$(ls -A "$work/tmp-inst1")" ]] || fail "install.sh left temporary files: $(ls -A "$work/tmp-inst1")"
[[ -x "$dir1/lokt" ]] || fail "install.sh did not install $dir1/lokt"
[[ -x "$dir1/lokt-full" ]] || fail "install.sh did not install $dir1/lokt-full"
grep -q "not on your PATH" "$work/install1.log" || fail "install.sh did not warn that $dir1 is not on PATH"
cmp -s "$dir1/lokt" "$(find dist -path "*/lokt_${host_os}_${host_arch}*/lokt" -type f | head -n 1)" ||
	fail "installed binary differs from the one goreleaser built"
exercise "$dir1/lokt" installed
# 2. Pinned version without the v, wget, on PATH, over an existing binary.
PATH="$dir1:$PATH" LOKT_VERSION="$snap_version" LOKT_DOWNLOADER=wget LOKT_BASE_URL="$base/good/" LOKT_INSTALL_DIR="$dir1" \
	sh scripts/install.sh >"$work/install2.log" 2>&1 || { cat "$work/install2.log" >&2; fail "install.sh (pinned, wget, reinstall) failed"; }
if grep -q "not on your PATH" "$work/install2.log"; then fail "install.sh warned about PATH although $dir1 is on it"; fi
leftovers="$(find "$dir1" -mindepth 1 ! -name lokt ! -name lokt-full)"
[[ -z "$leftovers" ]] || fail "install.sh left files behind in $dir1: $leftovers"
"$dir1/lokt" version >/dev/null || fail "reinstalled binary does not run"
echo "    pinned $snap_version via wget over an existing install: ok"
pass

begin install-refusals
# refused NAME EXPECTED-MESSAGE-REGEX ENV...: install.sh must exit non-zero,
# say why, and leave its install dir empty.
refused() {
	local name="$1" msg="$2" dir="$work/refuse-$1/bin" tmpd="$work/refuse-$1/tmp" rc=0
	shift 2
	mkdir -p "$dir" "$tmpd"
	env "$@" TMPDIR="$tmpd" LOKT_INSTALL_DIR="$dir" sh scripts/install.sh >"$work/refuse-$name.log" 2>&1 || rc=$?
	[[ $rc -ne 0 ]] || { cat "$work/refuse-$name.log" >&2; fail "$name: install.sh exited 0"; }
	grep -qiE "$msg" "$work/refuse-$name.log" || { cat "$work/refuse-$name.log" >&2; fail "$name: message does not match /$msg/"; }
	[[ -z "$(ls -A "$dir")" ]] || fail "$name: files left in $dir: $(ls -A "$dir")"
	[[ -z "$(ls -A "$tmpd")" ]] || fail "$name: temporary files left behind: $(ls -A "$tmpd")"
	echo "    $name: refused (exit $rc): $(grep -i error "$work/refuse-$name.log" | head -n 1)"
}
refused tampered 'checksum mismatch' LOKT_BASE_URL="$base/tampered"
refused missing-entry 'no entry for' LOKT_BASE_URL="$base/missing"
refused unknown-version 'v9\.9\.9 was not found' LOKT_BASE_URL="$base/good" LOKT_VERSION=v9.9.9
refused unknown-version-wget 'v9\.9\.9 was not found' LOKT_BASE_URL="$base/good" LOKT_VERSION=9.9.9 LOKT_DOWNLOADER=wget
refused no-mirror-latest 'latest' LOKT_BASE_URL="$base/nowhere"
pass
