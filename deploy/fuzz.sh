#!/usr/bin/env bash
# Runs every fuzz target of the given packages for FUZZTIME each:
#   deploy/fuzz.sh FUZZTIME PKG...      (GO names the go command; default go)
# A target fails the run when it finds a failing input (written to the
# package's testdata/fuzz) or fails in any other way, with one exception:
# on a loaded machine Go's fuzz coordinator itself can end a run that found
# nothing with a bare "context deadline exceeded" (the -fuzztime deadline
# reaches the coordinator before its workers stop). That error, and only
# when no failing input was written, is printed and the target run once more.
set -euo pipefail
fuzztime=${1:?usage: fuzz.sh FUZZTIME PKG...}
shift
go=${GO:-go}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

fuzz_target() { # PKG TARGET
  "$go" test -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" "$1" >"$log" 2>&1
}

coordinator_deadline() {
  grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written to' "$log"
}

for pkg in "$@"; do
  for target in $("$go" test -list 'Fuzz.*' "$pkg" | grep '^Fuzz'); do
    echo "fuzz $pkg $target ($fuzztime)"
    fuzz_target "$pkg" "$target" && continue
    if coordinator_deadline; then
      echo "fuzz $pkg $target: the fuzz coordinator stopped with its deadline error and no failing input; once more:"
      grep -B3 'context deadline exceeded' "$log" | sed 's/^/    /'
      fuzz_target "$pkg" "$target" && continue
    fi
    cat "$log"
    exit 1
  done
done
echo "fuzz: all targets passed"
