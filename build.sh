#!/usr/bin/env bash
# tcpcopy for Deno: set-up, build, test, benchmark and demo entry point.
#
#   ./build.sh            build dist/tcpcopy and dist/intercept (standalone executables)
#   ./build.sh test       run the whole test suite (end-to-end tests need root)
#   ./build.sh check      fmt --check, lint, type-check
#   ./build.sh bench      micro benchmarks (deno bench)
#   ./build.sh setup [demo|test|tcpcopy|intercept] [--check]
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

# Writes $DIST/.build/<name>.entry.ts: sets build metadata, then loads the entry point.
write_entry() {
  local name=$1 src=$2 commit
  commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
  if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit="$commit-dirty"; fi
  mkdir -p "$DIST/.build"
  printf 'globalThis.__TCPCOPY_BUILD__ = { commit: "%s" };\n' "$commit" >"$DIST/.build/$name.info.js"
  printf 'import "./%s.info.js";\nimport { main } from "%s";\nawait main(Deno.args);\n' "$name" "$ROOT/$src" >"$DIST/.build/$name.entry.ts"
}

# Self-contained fallback: a sh launcher + tar.gz(deno runtime, bundled program).
build_launcher() {
  local name=$1 out=$DIST/$name work hash
  "$DENO" bundle --quiet -o "$DIST/.build/$name.js" "$DIST/.build/$name.entry.ts"
  work=$(mktemp -d)
  cp "$DENO" "$work/deno"
  cp "$DIST/.build/$name.js" "$work/app.js"
  tar -C "$work" -czf "$DIST/.build/$name.tgz" deno app.js
  rm -rf "$work"
  hash=$(sha256sum "$DIST/.build/$name.tgz" | cut -c1-16)
  cat >"$out" <<STUB
#!/bin/sh
# $name (tcpcopy for Deno): self-extracting launcher. The payload after line 11 is a tar.gz
# of the Deno runtime and the bundled program, unpacked once into a per-user cache.
C="\${XDG_CACHE_HOME:-\${HOME:-/tmp}/.cache}/tcpcopy-deno/$name-$hash"
if [ ! -x "\$C/deno" ]; then
  mkdir -p "\$C.tmp.\$\$" 2>/dev/null || { C="\${TMPDIR:-/tmp}/tcpcopy-deno-\$(id -u)/$name-$hash"; mkdir -p "\$C.tmp.\$\$"; }
  tail -n +12 "\$0" | tar -xzf - -C "\$C.tmp.\$\$" || { echo "$name: cannot unpack runtime into \$C" >&2; exit 1; }
  mkdir -p "\$(dirname "\$C")" && mv "\$C.tmp.\$\$" "\$C" 2>/dev/null || rm -rf "\$C.tmp.\$\$"
fi
DENO_NO_UPDATE_CHECK=1 DENO_DIR="\$C/cache" exec "\$C/deno" run --quiet --no-config --no-lock --cached-only -A "\$C/app.js" "\$@"
exit 1
STUB
  cat "$DIST/.build/$name.tgz" >>"$out"
  chmod +x "$out"
}

build_one() {
  local name=$1 src=$2
  write_entry "$name" "$src"
  rm -f "$DIST/$name"
  if NO_COLOR=1 timeout 120 "$DENO" compile --quiet -A -o "$DIST/$name" "$DIST/.build/$name.entry.ts" >"$DIST/.build/$name.compile.log" 2>&1; then
    echo "built $DIST/$name: deno compile executable${DENORT_BIN:+ (runtime from DENORT_BIN)}"
  else
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
