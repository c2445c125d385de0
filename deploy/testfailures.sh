#!/usr/bin/env bash
# Prints what each failed test said (its own log lines, between its
# "=== RUN" and its "--- FAIL"), so a CI summary shows why it failed, not
# just the tail of the log. OpenCV/GStreamer warnings are left out.
# Usage: deploy/testfailures.sh build/test.log
set -euo pipefail
log=${1:?usage: testfailures.sh TESTLOG}
awk '
  FNR == NR { if (match($0, /--- FAIL: [^ ]+/)) { n = substr($0, RSTART + 10, RLENGTH - 10); sub(/\/.*/, "", n); failed[n] = 1 }; next }
  /^=== (RUN|CONT|PAUSE) / { after = 0; name = $3; sub(/\/.*/, "", name); cur = (name in failed) ? name : ""; if (cur != "" && !(cur in shown)) { shown[cur] = 1; print "### " cur } ; next }
  /^ *--- (PASS|FAIL|SKIP): / { name = $3; sub(/\/.*/, "", name); cur = ""; after = ($2 == "FAIL:"); if (after) print; next }
  after && /^[ \t]/ { print; next }
  { after = 0 }
  cur == "" { next }
  /WARN:|GStreamer-CRITICAL|^$|You need to explicitly|dropping the final reference|This problem may also|application or some element|Trying to dispose/ { next }
  { if (++lines[cur] <= 150) print }
' "$log" "$log"
