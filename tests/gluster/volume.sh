#!/usr/bin/env bash
# A private GlusterFS volume on this machine for `make test-cluster` and
# `make bench-cluster`: one glusterd and a replica-2 volume of two bricks, everything
# on 127.0.0.1, FUSE-mounted twice with the settings the README's deployment guide
# gives. Nothing of the system's Gluster is used or touched:
#
#   - glusterd runs with its own volfile, working directory and CLI socket under DIR,
#     inside a private mount namespace where /var/lib/glusterd, /var/log/glusterfs and
#     /var/run/gluster (which the bricks, the self-heal daemon and the CLI use whatever
#     the configuration says) are DIR's own directories;
#   - `option transport.socket.bind-address 127.0.0.1` keeps glusterd and the bricks on
#     loopback; the bricks are named by a host name added to /etc/hosts for the run
#     (the CLI refuses 127.0.0.1 and localhost as brick hosts) and removed after;
#   - stop ends only the processes start recorded (by PID) and unmounts only its
#     mounts.
#
#   volume.sh start DIR   prints "MOUNT_A MOUNT_B" once the volume is mounted twice
#   volume.sh stop DIR    tears down whatever start set up in DIR (safe to repeat)
#
# Exit status of start: 0 ready; 77 Gluster cannot run here (no root, no FUSE, the
# port taken: the message says which); anything else, a failure.
set -uo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
dir=$(cd "$dir" && pwd) || exit 2
vol=fosvol
port=24007

say() { echo "gluster: $*" >&2; }
cannot() {
	say "cannot run here: $*"
	echo "$*" >"$dir/cannot-run"
	exit 77
}
# The gluster CLI, in glusterd's mount namespace: it writes to /var/lib/glusterd too.
cli() {
	nsenter --mount --target "$(cat "$dir/glusterd.pid")" \
		gluster --glusterd-sock="$dir/glusterd.socket" --mode=script --log-file="$dir/log/cli.log" "$@"
}

start() {
	[ "$(id -u)" = 0 ] || cannot "needs root (glusterd, FUSE mounts, /etc/hosts)"
	command -v glusterd >/dev/null && command -v gluster >/dev/null ||
		cannot "glusterd is not installed (apt-get install glusterfs-server)"
	command -v unshare >/dev/null && command -v nsenter >/dev/null ||
		cannot "unshare and nsenter (util-linux) are missing"
	if [ ! -e /dev/fuse ] || ! grep -qw fuse /proc/filesystems; then
		modprobe fuse 2>/dev/null
		[ -e /dev/fuse ] || cannot "no /dev/fuse (FUSE is not available, modprobe fuse failed)"
		grep -qw fuse /proc/filesystems || cannot "the kernel has no FUSE file system"
	fi
	if ss -ltn 2>/dev/null | awk '{print $4}' | grep -qE "(^|:)$port\$"; then
		cannot "port $port is in use (is a glusterd already running here?)"
	fi
	mkdir -p "$dir"/{work,lib,log,run,bricks/b1,bricks/b2,mnt/a,mnt/b}

	# a brick host name for this run only, resolving to 127.0.0.1
	local host="fos-brick-$(basename "$dir" | tr -c 'a-zA-Z0-9-\n' -)"
	echo "$host" >"$dir/hosts-name"
	echo "127.0.0.1 $host # fos-test-cluster $host" >>/etc/hosts
	[ "$(getent hosts "$host" | awk '{print $1}')" = 127.0.0.1 ] ||
		{ say "$host does not resolve to 127.0.0.1"; return 1; }

	cat >"$dir/glusterd.vol" <<-EOF
		volume management
		    type mgmt/glusterd
		    option working-directory $dir/work
		    option run-directory $dir/run
		    option glusterd-sockfile $dir/glusterd.socket
		    option transport-type socket
		    option transport.socket.bind-address 127.0.0.1
		    option transport.socket.listen-port $port
		    option transport.socket.read-fail-log off
		    option ping-timeout 0
		    option event-threads 1
		end-volume
	EOF
	# the system directories Gluster writes to whatever it is told, replaced by ours
	# in a mount namespace that glusterd and everything it starts live in
	local binds=""
	for d in /var/lib/glusterd:lib /var/log/glusterfs:log /var/run/gluster:run; do
		local sys=${d%%:*} own=$dir/${d##*:}
		[ -d "$sys" ] || { mkdir -p "$sys" && echo "$sys" >>"$dir/created-dirs"; }
		binds+="mount --bind '$own' '$sys' && "
	done
	unshare --mount --propagation private sh -c \
		"${binds}exec glusterd -f '$dir/glusterd.vol' -p '$dir/glusterd.pid' -l '$dir/log/glusterd.log'" ||
		{ say "glusterd did not start (see $dir/log/glusterd.log)"; return 1; }
	local tries=0
	until [ -s "$dir/glusterd.pid" ] && cli volume list >/dev/null 2>&1; do
		tries=$((tries + 1))
		[ $tries -lt 100 ] || { say "glusterd does not answer (see $dir/log/glusterd.log)"; return 1; }
		sleep 0.2
	done

	# replica 2 on one host asks for "force" (both copies on one machine)
	cli volume create $vol replica 2 "$host:$dir/bricks/b1" "$host:$dir/bricks/b2" force >&2 || return 1
	# the caches that serve another mount's old data (see README, "Several servers")
	for o in stat-prefetch quick-read open-behind write-behind io-cache read-ahead; do
		cli volume set $vol performance.$o off >/dev/null || { say "volume set $o failed"; return 1; }
	done
	cli volume start $vol >&2 || return 1

	for m in a b; do
		mount -t glusterfs \
			-o "attribute-timeout=0,entry-timeout=0,negative-timeout=0,log-file=$dir/log/mount-$m.log" \
			"$host:/$vol" "$dir/mnt/$m" ||
			{ say "mounting the volume failed (see $dir/log/mount-$m.log)"; return 1; }
		echo "$dir/mnt/$m" >>"$dir/mounts"
	done
	# the two mounts are one volume
	echo ok >"$dir/mnt/a/.fos-probe" && [ "$(cat "$dir/mnt/b/.fos-probe" 2>/dev/null)" = ok ] ||
		{ say "the two mounts do not share their files"; return 1; }
	rm -f "$dir/mnt/a/.fos-probe"
	echo "$dir/mnt/a $dir/mnt/b"
}

# Whether PID runs a program whose command line mentions TEXT (a PID reused since
# must not be killed).
runs() { [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$2"; }

stop_pid() {
	local pid=$1 what=$2
	runs "$pid" "$what" || return 0
	kill "$pid" 2>/dev/null
	for _ in $(seq 50); do runs "$pid" "$what" || return 0; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null
}

stop() {
	if [ -f "$dir/mounts" ]; then
		while read -r m; do
			mountpoint -q "$m" && { umount "$m" || umount -l "$m"; }
		done <"$dir/mounts"
		rm -f "$dir/mounts"
	fi
	local pid=""
	[ -f "$dir/glusterd.pid" ] && pid=$(cat "$dir/glusterd.pid")
	if [ -n "$pid" ] && runs "$pid" "$dir/glusterd.vol"; then
		cli volume stop $vol >/dev/null 2>&1
		cli volume delete $vol >/dev/null 2>&1
	fi
	# what glusterd started (bricks, self-heal daemon) records its PID under run/
	for f in $(find "$dir/run" -name '*.pid' 2>/dev/null); do
		stop_pid "$(cat "$f")" "$vol"
	done
	[ -n "$pid" ] && stop_pid "$pid" "$dir/glusterd.vol"
	rm -f "$dir/glusterd.pid"
	if [ -f "$dir/hosts-name" ]; then
		local host=$(cat "$dir/hosts-name")
		# rewritten in place: /etc/hosts may be a bind mount that a rename cannot replace
		local kept
		kept=$(grep -vF " # fos-test-cluster $host" /etc/hosts)
		printf '%s\n' "$kept" >/etc/hosts
		rm -f "$dir/hosts-name"
	fi
	if [ -f "$dir/created-dirs" ]; then
		while read -r d; do rmdir "$d" 2>/dev/null; done <"$dir/created-dirs"
		rm -f "$dir/created-dirs"
	fi
	return 0
}

case $cmd in
start) start || { status=$?; [ $status = 77 ] || say "start failed; stopping what was started"; stop; exit $status; } ;;
stop) stop ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
