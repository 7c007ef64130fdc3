#!/usr/bin/env bash
# `make test-cluster` (run.sh test) and `make bench-cluster` (run.sh bench): a private
# GlusterFS volume mounted twice (volume.sh), the two-server suite or the cluster rows
# of the benchmark over it, then everything torn down, whatever happened.
#
# Exit status: the suite's; 77 when Gluster cannot run on this machine (the reason is
# printed, and written to the file $FOS_CLUSTER_SKIPPED names, if it is set, so that
# a caller of make, whose own status is 2 for any failure, can tell).
set -uo pipefail
what=${1:-test}
cd "$(dirname "$0")/../.."
dir=$(mktemp -d /tmp/fos-gluster.XXXXXX)
cleanup() {
	tests/gluster/volume.sh stop "$dir"
	# never descend into a mount that would not go
	if ! grep -qF " $dir/" /proc/mounts; then rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mounts=$(tests/gluster/volume.sh start "$dir")
status=$?
if [ $status = 77 ]; then
	reason="GlusterFS cannot run on this machine: $(cat "$dir/cannot-run" 2>/dev/null)"
	echo "make $what-cluster: SKIPPED: $reason" >&2
	[ -n "${FOS_CLUSTER_SKIPPED:-}" ] && echo "$reason" >"$FOS_CLUSTER_SKIPPED"
	exit 77
fi
[ $status = 0 ] || exit $status
echo "== GlusterFS volume up, mounted at $mounts" >&2
case $what in
test)
	FOS_CLUSTER_MOUNTS="$mounts" FOS_CLUSTER_FAILOVER_MIB=${FOS_CLUSTER_FAILOVER_MIB:-1024} \
		${CARGO:-cargo} test --test cluster
	;;
bench)
	FOS_BENCH_CLUSTER="$mounts" ${CARGO:-cargo} bench --bench bench
	;;
*)
	echo "usage: $0 test|bench" >&2
	exit 2
	;;
esac
