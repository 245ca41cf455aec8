#!/usr/bin/env bash
# tcpcopy for Deno: set-up, build, test, benchmark and demo entry point.
#
#   ./build.sh            build dist/tcpcopy and dist/intercept (standalone executables)
#   ./build.sh test       run the whole test suite (end-to-end tests need root)
#   ./build.sh check      fmt --check, lint, type-check
#   ./build.sh bench      micro benchmarks (deno bench)
#   ./build.sh setup [demo|test|tcpcopy|intercept|bench] [--check]
#                         install the missing system packages (root), or list them
#   ./build.sh deno ARGS  run the project's deno with ARGS
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
ROOT=$PWD
DIST=${DIST:-dist} # output folder (tests build into a temporary one)
DENO_VERSION=2.9.6

# Find deno on PATH, else the project-local copy, else install the pinned version with npm.
find_deno() {
  if [ -n "${DENO:-}" ] && [ -x "$DENO" ]; then return; fi
  if command -v deno >/dev/null 2>&1; then DENO=$(command -v deno); return; fi
  local local_deno="$ROOT/.tools/deno/node_modules/deno/deno"
  if [ ! -x "$local_deno" ]; then
    if ! command -v npm >/dev/null 2>&1; then
      echo "build.sh: deno not found and npm is missing. Install Deno $DENO_VERSION:" >&2
      echo "  curl -fsSL https://deno.land/install.sh | sh" >&2
      exit 1
    fi
    echo "build.sh: installing deno $DENO_VERSION into .tools/deno (npm)" >&2
    mkdir -p "$ROOT/.tools/deno"
    (cd "$ROOT/.tools/deno" && echo '{"private":true}' >package.json &&
      npm install --no-audit --no-fund --loglevel=error "deno@$DENO_VERSION" >&2)
  fi
  DENO=$local_deno
}

# Sets V8_FLAGS to program $1's V8 flags, comma-separated: lib/process/v8_flags.ts holds each
# program's list (deno run in tests and benchmarks reads it too); both kinds of executable start
# with them.
read_v8_flags() {
  V8_FLAGS=$("$DENO" run --quiet --no-config --no-lock "$ROOT/lib/process/v8_flags.ts" "$1")
  case $V8_FLAGS in
  --*) ;;
  *) echo "build.sh: lib/process/v8_flags.ts printed no V8 flags for $1 ('$V8_FLAGS')" >&2; exit 1 ;;
  esac
}

# Writes $DIST/.build/<name>.entry.ts: sets build metadata, then loads the entry point.
write_entry() {
  local name=$1 src=$2 commit
  commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
  if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit="$commit-dirty"; fi
  mkdir -p "$DIST/.build"
  printf 'globalThis.__TCPCOPY_BUILD__ = { commit: "%s" };\n' "$commit" >"$DIST/.build/$name.info.js"
  printf 'import "./%s.info.js";\nimport { main } from "%s";\nawait main(Deno.args);\n' "$name" "$ROOT/$src" >"$DIST/.build/$name.entry.ts"
}

# Self-contained fallback: a POSIX sh launcher + tar.gz(deno runtime, bundled program). The stub
# (launcher_stub) embeds the SHA-256 of both files and checks them before every exec.
build_launcher() {
  local name=$1 out=$DIST/$name work hash deno_sum app_sum stub lines
  "$DENO" bundle --quiet -o "$DIST/.build/$name.js" "$DIST/.build/$name.entry.ts"
  work=$(mktemp -d)
  cp "$DENO" "$work/deno"
  cp "$DIST/.build/$name.js" "$work/app.js"
  deno_sum=$(sha256sum <"$work/deno" | cut -d' ' -f1)
  app_sum=$(sha256sum <"$work/app.js" | cut -d' ' -f1)
  tar -C "$work" -czf "$DIST/.build/$name.tgz" deno app.js
  rm -rf "$work"
  hash=$(sha256sum "$DIST/.build/$name.tgz" | cut -c1-16)
  stub=$DIST/.build/$name.stub
  launcher_stub >"$stub"
  lines=$(wc -l <"$stub")
  sed -e "s|@NAME@|$name|g" -e "s|@VERSION@|$name-$hash|g" -e "s|@DENO_SHA256@|$deno_sum|g" \
    -e "s|@V8_FLAGS@|$V8_FLAGS|g" -e "s|@APP_SHA256@|$app_sum|g" -e "s|@PAYLOAD_LINE@|$((lines + 1))|g" "$stub" >"$out"
  cat "$DIST/.build/$name.tgz" >>"$out"
  chmod +x "$out"
}

# The launcher's sh text with @PLACEHOLDERS@ (see build_launcher). Cache directory: the first of
# $XDG_CACHE_HOME/tcpcopy-deno, $HOME/.cache/tcpcopy-deno, /var/cache/tcpcopy-deno (root without
# HOME), ${TMPDIR:-/tmp}/tcpcopy-deno-UID (others without HOME); it must be a real directory owned
# by the caller with mode 0700, below directories owned by the caller or root that others cannot
# write to (unless sticky). The payload is unpacked into a fresh directory inside it, checked, then
# renamed into place; both files are checked again before every exec.
launcher_stub() {
  cat <<'STUB'
#!/bin/sh
# @NAME@ (tcpcopy for Deno): self-extracting launcher. Lines @PAYLOAD_LINE@ to the end are a tar.gz
# of the Deno runtime and the bundled program, unpacked once into a private cache directory
# (owned by the caller, mode 0700); both files are checked against the SHA-256 sums below before
# every run. Root without HOME uses /var/cache/tcpcopy-deno, never /tmp.
n=@NAME@ v=@VERSION@ sd=@DENO_SHA256@ sa=@APP_SHA256@
die() { echo "$n: $*" >&2; exit 1; }
command -v sha256sum >/dev/null 2>&1 || die "sha256sum (coreutils) is needed to check the runtime"
u=$(id -u) || die "cannot find the caller's uid (id -u)"
if [ -n "${XDG_CACHE_HOME:-}" ]; then b=$XDG_CACHE_HOME/tcpcopy-deno
elif [ -n "${HOME:-}" ]; then b=$HOME/.cache/tcpcopy-deno
elif [ "$u" = 0 ]; then b=/var/cache/tcpcopy-deno
else b=${TMPDIR:-/tmp}/tcpcopy-deno-$u; fi
case $b in /*) ;; *) die "cache directory $b is not an absolute path (set HOME or XDG_CACHE_HOME)" ;; esac
modeowner() { ls -ldn "$@" 2>/dev/null | { read -r m x o r; echo "$m $o"; }; }
# Every existing directory above the cache: the caller's or root's, not writable by others unless
# sticky (so nobody else can rename it away between the checks and the exec). Checked before
# anything is created: root with another user's HOME (sudo without -H) writes nothing there.
p=${b%/*}; [ -n "$p" ] || p=/
d=$p
while :; do
  if [ -e "$d" ]; then
    mo=$(modeowner -L "$d")
    [ "${mo#* }" = "$u" ] || [ "${mo#* }" = 0 ] || die "refusing cache directory $b: $d is owned by uid ${mo#* }, not by the caller (uid $u) or root (sudo: use -H or set XDG_CACHE_HOME)"
    case ${mo% *} in ?????w*|????????w*) case ${mo% *} in ?????????[tT]*) ;; *) die "refusing cache directory $b: $d has mode ${mo% *}, writable by group or others" ;; esac ;; esac
  fi
  [ "$d" = / ] && break
  d=${d%/*}; [ -n "$d" ] || d=/
done
[ -d "$p" ] || (umask 077 && mkdir -p "$p") || die "cannot create $p"
[ -e "$b" ] || [ -L "$b" ] || mkdir -m 700 "$b" 2>/dev/null
[ ! -L "$b" ] || die "refusing cache directory $b: it is a symbolic link"
[ -d "$b" ] || die "refusing cache directory $b: not a directory"
mo=$(modeowner "$b")
[ "${mo#* }" = "$u" ] || die "refusing cache directory $b: owned by uid ${mo#* }, not by the caller (uid $u); remove it"
case ${mo% *} in drwx------*) ;; *) die "refusing cache directory $b: mode ${mo% *}, expected drwx------ (0700); chmod 700 it" ;; esac
# SHA-256 of $1 is $2? openssl (SHA-NI, ~4x faster on the 95 MB runtime) when present, and
# sha256sum before saying no, so a missing or odd openssl can never pass or fail a file alone.
ossl() { command -v openssl >/dev/null 2>&1 && s=$(openssl dgst -sha256 -r <"$1" 2>/dev/null) && echo "${s%% *}"; }
is() { [ "$(ossl "$1")" = "$2" ] || { s=$(sha256sum <"$1" 2>/dev/null) && [ "${s%% *}" = "$2" ]; }; }
check() { # dir, what to say
  is "$1/deno" "$sd" || die "refusing to run $1/deno: its SHA-256 is not the one built into this launcher ($2)"
  is "$1/app.js" "$sa" || die "refusing to run $1/app.js: its SHA-256 is not the one built into this launcher ($2)"
}
c=$b/$v
if [ ! -e "$c" ] && [ ! -L "$c" ]; then
  t=$b/.$v.$$
  rm -rf "$t" && mkdir "$t" || die "cannot create $t"
  tail -n +@PAYLOAD_LINE@ "$0" | tar -xzf - -C "$t" || { rm -rf "$t"; die "cannot unpack the runtime into $t"; }
  (check "$t" "this launcher file is damaged or was modified") || { rm -rf "$t"; exit 1; }
  if [ -e "$c" ] || [ -L "$c" ]; then rm -rf "$t"; else mv "$t" "$c" || die "cannot rename $t to $c"; fi
fi
check "$c" "the cache was modified: remove $c to unpack it again"
DENO_NO_UPDATE_CHECK=1 DENO_DIR="$c/cache" exec "$c/deno" run --quiet --no-config --no-lock --cached-only --no-code-cache "--v8-flags=@V8_FLAGS@" -A "$c/app.js" "$@"
exit 1
STUB
}

build_one() {
  local name=$1 src=$2
  read_v8_flags "$name"
  write_entry "$name" "$src"
  rm -f "$DIST/$name"
  # --no-code-cache: a compiled executable would otherwise load (and write) a V8 code cache at
  # ${TMPDIR:-/tmp}/deno-compile-<name>.cache, a file another local user can plant for root or a
  # setcap'ed copy to deserialize. BUILD_LAUNCHER=1 skips deno compile (tests of the launcher).
  # --v8-flags are embedded: the executable starts with them (lib/process/v8_flags.ts).
  if [ "${BUILD_LAUNCHER:-}" != 1 ] &&
    NO_COLOR=1 timeout 120 "$DENO" compile --quiet -A --no-code-cache --v8-flags="$V8_FLAGS" -o "$DIST/$name" "$DIST/.build/$name.entry.ts" >"$DIST/.build/$name.compile.log" 2>&1; then
    echo "built $DIST/$name: deno compile executable${DENORT_BIN:+ (runtime from DENORT_BIN)}"
  else
    [ "${BUILD_LAUNCHER:-}" = 1 ] && echo "note: BUILD_LAUNCHER=1: building the launcher" >&2 ||
      echo "note: deno compile did not work here ($(grep -m1 -oE 'dns error|error sending request|Permission denied|No such file' "$DIST/.build/$name.compile.log" | head -n1 || echo 'see log'); set DENORT_BIN to a denort runtime): $DIST/.build/$name.compile.log" >&2
    build_launcher "$name"
    echo "built $DIST/$name: self-extracting launcher (deno bundle + Deno runtime), $(du -h "$DIST/$name" | cut -f1)"
  fi
}

cmd_build() {
  build_one tcpcopy main.ts
  build_one intercept intercept.ts
  (cd "$DIST" && sha256sum tcpcopy intercept >SHA256SUMS)
  echo "checksums: $DIST/SHA256SUMS"
}

# Runs deno test and ends with a plain "N passed, N failed" line.
cmd_test() {
  local log status summary
  log=$(mktemp)
  set +e
  NO_COLOR=1 "$DENO" test -A --parallel "$@" tests/ 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  set -e
  summary=$(grep -aE '^(ok|FAILED) \| [0-9]+ passed' "$log" | tail -n1 || true)
  rm -f "$log"
  if [ -n "$summary" ]; then
    echo "$summary" | sed -E 's/^.*\| ([0-9]+) passed.*\| ([0-9]+) failed.*$/tests: \1 passed, \2 failed/'
  fi
  return "$status"
}

# Installs the system packages `$1` (demo, test) needs, or stops with the list (tools/setup.ts).
run_setup() {
  "$DENO" run -A --quiet tools/setup.ts "$1" || exit 1
}

find_deno
case "${1:-build}" in
build) cmd_build ;;
test) shift; run_setup test; cmd_test "$@" ;;
check) "$DENO" task check ;;
bench) shift; "$DENO" bench -A "$@" bench/ ;;
deno) shift; exec "$DENO" "$@" ;;
demo) shift; run_setup demo; exec "$DENO" run -A tools/demo.ts "$@" ;;
setup) shift; exec "$DENO" run -A --quiet tools/setup.ts "$@" ;;
*) echo "usage: ./build.sh [build|test|check|bench|demo|setup|deno ARGS]" >&2; exit 2 ;;
esac
