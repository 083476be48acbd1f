#!/usr/bin/env bash
# Runs the DSO benchmark side by side with Redis and ZooKeeper on loopback.
# Installs redis-server and zookeeper from the system's packages if missing,
# starts them on private ports with throwaway data directories, runs
# bench/dso, and stops them again. Extra arguments go to the Go program,
# e.g. bench/dso/run.sh -duration 5s.
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
command -v redis-server >/dev/null || need+=(redis-server)
[ -f /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

work=$(mktemp -d)
redis_port=${REDIS_PORT:-6391}
zk_port=${ZK_PORT:-2191}
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# Redis: no persistence, as the DSO's ephemeral objects.
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
	--maxclients 10000 --dir "$work" --logfile "$work/redis.log" &
pids+=($!)

# A second Redis with one replica, for the replicated comparisons (every
# write followed by WAIT 1, as a call on a replicated DSO object returns
# once a majority of its replicas have it).
rrepl_port=${REDIS_REPL_PORT:-6392}
rreplica_port=${REDIS_REPLICA_PORT:-6393}
mkdir -p "$work/rp" "$work/rr"
redis-server --port "$rrepl_port" --bind 127.0.0.1 --save '' --appendonly no \
	--maxclients 10000 --dir "$work/rp" --logfile "$work/redis-primary.log" &
pids+=($!)
redis-server --port "$rreplica_port" --bind 127.0.0.1 --save '' --appendonly no \
	--replicaof 127.0.0.1 "$rrepl_port" --dir "$work/rr" --logfile "$work/redis-replica.log" &
pids+=($!)

# ZooKeeper standalone; forceSync=no so that it, like the others, does not
# fsync every write.
mkdir -p "$work/zk"
cat >"$work/zoo.cfg" <<CFG
tickTime=2000
dataDir=$work/zk
clientPort=$zk_port
clientPortAddress=127.0.0.1
maxClientCnxns=0
forceSync=no
admin.enableServer=false
4lw.commands.whitelist=ruok
CFG
java -Dzookeeper.log.dir="$work" -Dzookeeper.root.logger=WARN,CONSOLE \
	-cp "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar" \
	org.apache.zookeeper.server.quorum.QuorumPeerMain "$work/zoo.cfg" >"$work/zk.log" 2>&1 &
pids+=($!)

for i in $(seq 1 100); do
	if redis-cli -p "$redis_port" ping >/dev/null 2>&1 &&
		[ "$(redis-cli -p "$rreplica_port" info replication 2>/dev/null | tr -d '\r' | grep -c 'master_link_status:up')" = 1 ] &&
		[ "$( (echo ruok; sleep 0.2) | timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$zk_port; cat >&3; cat <&3" 2>/dev/null)" = "imok" ]; then
		break
	fi
	sleep 0.2
	if [ "$i" = 100 ]; then
		echo "redis or zookeeper did not start; logs in $work" >&2
		tail -20 "$work/zk.log" >&2 || true
		exit 1
	fi
done

mkdir -p bench/results
go build -o "$work/dsobench" ./bench/dso
"$work/dsobench" -redis "127.0.0.1:$redis_port" -redis-replicated "127.0.0.1:$rrepl_port" -zk "127.0.0.1:$zk_port" \
	-out bench/results/dso.json "$@"
