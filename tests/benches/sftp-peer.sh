#!/usr/bin/env bash
# Starts a private sshd on 127.0.0.1 for `make bench-peers`, with its own config, host
# key and client key in DIR, so the bench can run the same workloads over sftp.
#   tests/benches/sftp-peer.sh start DIR   -> prints the port; the PID is in DIR/sshd.pid
#   tests/benches/sftp-peer.sh stop DIR
# Nothing outside DIR is touched; the daemon listens on 127.0.0.1 only.
set -euo pipefail
cmd=$1
dir=$2
case "$cmd" in
start)
  mkdir -p "$dir/files"
  chmod 700 "$dir"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key" <<<y >/dev/null
  ssh-keygen -q -t ed25519 -N '' -f "$dir/client_key" <<<y >/dev/null
  cp "$dir/client_key.pub" "$dir/authorized_keys"
  chmod 600 "$dir/authorized_keys"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat >"$dir/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $port
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
# the bench opens 100 sessions at once: let them all in, as fos does
MaxStartups 200
MaxSessions 200
CONF
  mkdir -p /run/sshd
  "$(command -v sshd || echo /usr/sbin/sshd)" -f "$dir/sshd_config" -E "$dir/sshd.log"
  for _ in $(seq 1 50); do [ -s "$dir/sshd.pid" ] && break; sleep 0.1; done
  echo "$port"
  ;;
stop)
  [ -s "$dir/sshd.pid" ] && kill "$(cat "$dir/sshd.pid")" || true
  ;;
esac
