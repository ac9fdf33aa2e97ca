#!/usr/bin/env bash
# Every Molecule scenario, in lanes that run at the same time (MOLECULE_LANES, default 2).
# The scenarios spend most of their time waiting on containers (image loads into the
# emulated hosts' engines, model servers starting, probes), so two lanes on the 2-core
# CI machine take far less wall time than one. Each scenario's output goes to
# .cache/molecule-logs/<scenario>.log and is printed whole when its lane is done; each
# scenario's time is printed as "==> molecule scenario <name>: <seconds> s (rc <n>)"
# (docs/development.md records them). Exits non-zero when any scenario failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
lanes=${MOLECULE_LANES:-2}
logs=.cache/molecule-logs
rm -rf "$logs" && mkdir -p "$logs"

# Longest first, each to the lane with the least work so far (times in docs/development.md).
declare -A weight=([faults]=530 [rolling]=300 [sources]=300 [default]=230 [plan]=70)
mapfile -t scenarios < <(for s in $(ls molecule); do echo "${weight[$s]:-200} $s"; done | sort -rn | awk '{print $2}')
declare -a lane_work lane_list
for ((i = 0; i < lanes; i++)); do lane_work[i]=0; lane_list[i]=""; done
for s in "${scenarios[@]}"; do
  best=0
  for ((i = 1; i < lanes; i++)); do ((lane_work[i] < lane_work[best])) && best=$i; done
  lane_work[best]=$((lane_work[best] + ${weight[$s]:-200}))
  lane_list[best]="${lane_list[best]} $s"
done

run_lane() {
  local status=0
  for s in $1; do
    local start=$(date +%s)
    molecule test -s "$s" >"$logs/$s.log" 2>&1
    local rc=$?
    echo "==> molecule scenario $s: $(($(date +%s) - start)) s (rc $rc)" >>"$logs/$s.log"
    ((rc == 0)) || status=1
  done
  return $status
}

pids=()
for ((i = 0; i < lanes; i++)); do
  [ -n "${lane_list[i]}" ] || continue
  echo "==> molecule lane $((i + 1)):${lane_list[i]}"
  run_lane "${lane_list[i]}" &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
for s in "${scenarios[@]}"; do
  echo "================================================================ molecule scenario $s"
  cat "$logs/$s.log"
done
grep -h "^==> molecule scenario" "$logs"/*.log
exit $failed
