#!/usr/bin/env bash
# A real cluster in one go: a CA and node certificates (`raft-election
# certs`), three `raft-election node` processes on 127.0.0.1-3 speaking
# mutual TLS, a leader elected, the leader killed with SIGKILL, a new
# leader, the old one restarted from its data directory as a follower.
# Every node is stopped when the script ends, however it ends.
#
# Usage: scripts/real-cluster.sh [DATA_DIR]   (default: a new temporary one)
# Needs curl (the nodes' status endpoints). Exits 0 if every step happened.
# Ends with `raft-election status` (the cluster as one table) and the new
# leader's metrics and readiness.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -q --bin raft-election
bin=target/release/raft-election
data=${1:-$(mktemp -d)}
port=7001
declare -A pids

peers_of() {
    local id=$1 peers=() j
    for j in 1 2 3; do
        [[ $j == "$id" ]] || peers+=(--peer "$j=127.0.0.$j:$port")
    done
    echo "${peers[@]}"
}

start() {
    local id=$1 init=${2:-}
    # shellcheck disable=SC2046
    $bin node --id "$id" --listen "127.0.0.$id:$port" $(peers_of "$id") \
        --data-dir "$data/n$id" --status "127.0.0.$id:8001" --tls-dir "$data/certs" $init \
        2>>"$data/n$id.log" &
    pids[$id]=$!
    # Not a job of this shell: its end (a SIGKILL below) is not announced.
    disown "$!"
}

# Waits until process $1 is gone: 10 s at most, then SIGKILL.
gone() {
    local tries=0
    while kill -0 "$1" 2>/dev/null; do
        if ((++tries > 500)); then
            kill -KILL "$1" 2>/dev/null || true
        fi
        sleep 0.02
    done
}

stop_all() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do gone "$pid"; done
}
trap stop_all EXIT

status() { curl -s --max-time 1 "http://127.0.0.$1:8001/status" || true; }

# Prints the id of a node that reports itself leader of a term above $1.
leader_after() {
    local after=$1 id deadline=$((SECONDS + 10)) s term
    while ((SECONDS < deadline)); do
        for id in "${!pids[@]}"; do
            s=$(status "$id")
            term=$(grep -o '"term":[0-9]*' <<<"$s" | cut -d: -f2)
            if grep -q '"role":"leader"' <<<"$s" && ((${term:-0} > after)); then
                echo "$id $term"
                return
            fi
        done
        sleep 0.05
    done
    echo "no leader of a term after t$after within 10 s" >&2
    exit 1
}

echo "data and logs in $data"
$bin certs --dir "$data/certs" --nodes 1,2,3 >/dev/null
echo "certificates in $data/certs"
for id in 1 2 3; do start "$id" --init; done
read -r leader term < <(leader_after 0)
echo "n$leader leads t$term"
status "$leader"; echo

kill -KILL "${pids[$leader]}"
gone "${pids[$leader]}"
unset "pids[$leader]"
echo "killed n$leader with SIGKILL"
read -r successor new_term < <(leader_after "$term")
echo "n$successor leads t$new_term"

start "$leader"
deadline=$((SECONDS + 10))
until status "$leader" | grep -q "\"leader\":$successor,.*\"role\":\"follower\",\"running\":true,\"term\":$new_term"; do
    ((SECONDS < deadline)) || { echo "n$leader did not rejoin as a follower of t$new_term" >&2; exit 1; }
    sleep 0.05
done
echo "n$leader restarted from $data/n$leader and follows n$successor in t$new_term:"
status "$leader"; echo

# The operator's view: one table of the cluster, and the new leader's
# metrics saying it leads.
$bin status --peer 127.0.0.1:8001 --peer 127.0.0.2:8001 --peer 127.0.0.3:8001
curl -s --max-time 1 "http://127.0.0.$successor:8001/metrics" | grep -qx 'raft_election_is_leader 1' ||
    { echo "n$successor's metrics do not say it leads" >&2; exit 1; }
curl -s --max-time 1 "http://127.0.0.$successor:8001/readyz" | grep -q "n$successor leads" ||
    { echo "n$successor is not ready" >&2; exit 1; }
