#!/usr/bin/env bash
# Per-operation counts of a benchmark scenario, for gproc and for its reference, in one
# flavor: syscalls (strace -c -f) and context switches, CPU migrations and CPU time
# (perf stat), over both processes (the driver and the peer it starts).
#
# Usage: benches/counts.sh <raw|rpc> <flavor> <scenario>... [-n iterations] [-p placement]
#
#   flavor     multi_thread, current_thread or blocking
#   scenario   a probe scenario (see the top of benches/raw.rs and benches/rpc.rs), or a
#              stem that names gproc's and its references':
#                raw: rt_16, rt_65536, ack_16  (rt_16 -> rt_gproc_16 rt_uds_16)
#                rpc: add, echo, inflight      (echo -> echo_gproc echo_tarpc echo_uds)
#                rpc: stream                   (stream -> stream_items send_loop; an
#                                               operation is an item, or a message)
#   -n         operations per probe run (default 20000)
#   -p         pinned (default) or unpinned
#
# Each scenario runs twice under each tool, with n operations and with 1; the difference,
# divided by n - 1, is what one operation costs (start-up, connection set-up and the check
# run before measuring cancel out). strace slows every syscall down, so context switches
# come from the perf run, which strace does not perturb.
#
# Needs strace and perf: apt-get install -y strace linux-perf.
set -euo pipefail

usage() { sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

[[ $# -ge 3 ]] || usage
bench=$1 flavor=$2
shift 2
iterations=20000 placement=pinned scenarios=()
while [[ $# -gt 0 ]]; do
    case $1 in
        -n) iterations=$2; shift 2 ;;
        -p) placement=$2; shift 2 ;;
        -h|--help) usage ;;
        *) scenarios+=("$1"); shift ;;
    esac
done
case $bench in raw|rpc) ;; *) usage ;; esac
case $flavor in multi_thread|current_thread|blocking) ;; *) usage ;; esac
case $placement in pinned|unpinned) ;; *) usage ;; esac
[[ ${#scenarios[@]} -gt 0 && $iterations -gt 1 ]] || usage

for tool in strace perf; do
    command -v $tool >/dev/null || { echo "counts.sh: $tool is missing: apt-get install -y strace linux-perf" >&2; exit 1; }
done
perf stat -e context-switches,cpu-migrations true >/dev/null 2>&1 \
    || { echo "counts.sh: perf cannot count context-switches,cpu-migrations here" >&2; exit 1; }

# Stems to probe scenario names.
probes=()
for s in "${scenarios[@]}"; do
    case $bench:$s in
        raw:rt_16|raw:rt_65536|raw:ack_16) probes+=("${s%%_*}_gproc_${s#*_}" "${s%%_*}_uds_${s#*_}") ;;
        rpc:add) probes+=(add_gproc add_tarpc add_uds) ;;
        rpc:inflight) probes+=("${s}_gproc" "${s}_tarpc") ;;
        rpc:stream) probes+=(stream_items send_loop) ;;
        rpc:echo) probes+=(echo_gproc echo_tarpc echo_uds) ;;
        *) probes+=("$s") ;;
    esac
done

cd "$(dirname "$0")/.."
exe=$(cargo bench -p gproc-benches --bench "$bench" --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -n 1)
[[ -x $exe ]] || { echo "counts.sh: cannot find the $bench bench executable" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# run <tool> <scenario> <n> <output file>: one driver (and its peer) in probe mode.
run() {
    local tool=$1 scenario=$2 n=$3 out=$4
    local env=(env GPROC_BENCH_DRIVER="$placement" GPROC_BENCH_FLAVOR="$flavor"
               GPROC_BENCH_PROBE="$flavor/$scenario:$n")
    case $tool in
        strace) strace -f -c -o "$out" "${env[@]}" "$exe" >/dev/null 2>"$out.err" ;;
        perf) perf stat -x, -e context-switches,cpu-migrations,task-clock -o "$out" \
                  "${env[@]}" "$exe" >"$out.probe" 2>"$out.err" ;;
    esac || { echo "counts.sh: $scenario under $tool failed:" >&2; cat "$out.err" >&2; exit 1; }
}

# syscalls <strace -c file>: "<name> <calls>" lines, and "total <calls>".
syscalls() {
    awk '$1 ~ /^[0-9.]+$/ && NF >= 5 { print $NF, $4 }' "$1"
}

# perf_value <perf -x, file> <event>
perf_value() {
    awk -F, -v ev="$2" '$3 == ev { print $1 }' "$1"
}

printf '%s bench, %s, %s: per operation, from %d operations minus 1\n\n' \
    "$bench" "$flavor" "$placement" "$iterations"
printf '%-16s %9s %9s %9s %9s %10s  %s\n' scenario 'µs/op' 'CPU µs' syscalls 'ctx sw' migrations \
    'main syscalls per op'
for p in "${probes[@]}"; do
    for n in 1 "$iterations"; do
        run strace "$p" "$n" "$work/$p.$n.strace"
        run perf "$p" "$n" "$work/$p.$n.perf"
    done
    per_op() { awk -v a="$1" -v b="$2" -v n="$iterations" 'BEGIN { v = (b - a) / (n - 1); if (v < 0.005 && v > -0.005) v = 0; printf "%.2f", v }'; }
    declare -A one=() many=()
    while read -r name calls; do one[$name]=$calls; done < <(syscalls "$work/$p.1.strace")
    while read -r name calls; do many[$name]=$calls; done < <(syscalls "$work/$p.$iterations.strace")
    breakdown=$(for name in "${!many[@]}"; do
        [[ $name == total ]] && continue
        per_op "${one[$name]:-0}" "${many[$name]}"; echo " $name"
    done | sort -rn | awk '$1 >= 0.05 { printf "%s%s %s", sep, $2, $1; sep = ", " } NR == 6 { exit }')
    us=$(sed -n 's/.* \([0-9.]*\) µs each.*/\1/p' "$work/$p.$iterations.perf.probe")
    cpu_ms_1=$(perf_value "$work/$p.1.perf" task-clock)
    cpu_ms_n=$(perf_value "$work/$p.$iterations.perf" task-clock)
    printf '%-16s %9s %9s %9s %9s %10s  %s\n' "$p" "$us" \
        "$(awk -v a="$cpu_ms_1" -v b="$cpu_ms_n" -v n="$iterations" 'BEGIN { printf "%.2f", (b - a) * 1000 / (n - 1) }')" \
        "$(per_op "${one[total]:-0}" "${many[total]}")" \
        "$(per_op "$(perf_value "$work/$p.1.perf" context-switches)" "$(perf_value "$work/$p.$iterations.perf" context-switches)")" \
        "$(per_op "$(perf_value "$work/$p.1.perf" cpu-migrations)" "$(perf_value "$work/$p.$iterations.perf" cpu-migrations)")" \
        "$breakdown"
    unset one many
done
