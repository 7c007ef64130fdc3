# fos: the two commands a newcomer needs are `make run` and `make test`.
CARGO ?= cargo
BIND ?= 127.0.0.1
PORT ?= 5001
GREET_PORT ?= 5003

.PHONY: all build run test test-deps lint certs bench bench-peers fuzz clean \
	test-cluster bench-cluster cluster-deps install

all: build

build:
	$(CARGO) build --release

# Starts a server on loopback with the demo certificate and users (u/p, alice/wonderland,
# bob/builder). Stop it with Ctrl-C.
run: build
	@chmod 600 certs/key.pem user_credentials.txt
	@echo "In another terminal, connect with:"
	@echo "  FOS_PASSWORD=p ./target/release/fos-client --server $(BIND):$(PORT) --user u"
	@echo "(or leave out FOS_PASSWORD to be asked). Demo certificate: never use it beyond loopback."
	./target/release/fos-server --bind $(BIND) --port $(PORT) --greet-port $(GREET_PORT) \
		--cert certs/cert.pem --key certs/key.pem --users user_credentials.txt --root server_storage

# What the tests need beyond cargo: Python 3 (standard library only) for the legacy
# peers, openssl for the make certs test, and util-linux's `script` for the tests that
# need a terminal.
test-deps:
	@command -v python3 >/dev/null 2>&1 || { \
		echo "installing python3 for the legacy-protocol test peers"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3; }
	@command -v openssl >/dev/null 2>&1 || { \
		echo "installing openssl for the make certs test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl; }
	@command -v script >/dev/null 2>&1 || { \
		echo "installing bsdutils (script) for the terminal tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bsdutils; }

# The docs too: a link from the public API into a private module is an error, so the
# line between the two stays where lib.rs draws it.
lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --quiet

test: test-deps lint
	$(CARGO) test --lib --bins --tests

# The two-server suite (tests/cluster.rs) over a real GlusterFS volume instead of one
# plain directory: a private glusterd on 127.0.0.1 with its own directories, a replica-2
# volume of two bricks with the README's settings, mounted twice, servers on 127.0.0.2
# and 127.0.0.3, then all of it torn down (tests/gluster/). Installs glusterfs-server if
# it is missing. Where Gluster cannot run (no FUSE, no root) it says so and the recipe
# exits 77.
cluster-deps:
	@command -v glusterd >/dev/null 2>&1 && command -v mount.glusterfs >/dev/null 2>&1 || { \
		echo "installing glusterfs-server for the cluster targets"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq glusterfs-server glusterfs-client; }

test-cluster: test-deps cluster-deps
	@CARGO=$(CARGO) tests/gluster/run.sh test

# make bench's cluster rows: put/get through each server of a Gluster volume beside a
# plain copy onto the same mount (plain make bench leaves them out).
bench-cluster: cluster-deps
	@CARGO=$(CARGO) tests/gluster/run.sh bench

# Installs the binaries, the systemd unit and the docs under PREFIX (DESTDIR for
# staging): make install PREFIX=/usr/local
PREFIX ?= /usr/local
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/systemd/system \
		$(DESTDIR)$(PREFIX)/share/doc/fos
	install -m 0755 target/release/fos-server target/release/fos-client $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|/usr/local/bin/|$(PREFIX)/bin/|g' -e 's|/usr/local/share/|$(PREFIX)/share/|g' \
		contrib/fos-server.service \
		> $(DESTDIR)$(PREFIX)/lib/systemd/system/fos-server.service
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/fos-server.service
	install -m 0644 README.md docs/PROTOCOL.md $(DESTDIR)$(PREFIX)/share/doc/fos/

# A fresh self-signed pair for a real deployment; add your names:
#   make certs DIR=/etc/fos SAN="DNS:files.lan,IP:127.0.0.1"
# It refuses to replace an existing DIR/cert.pem (clients pinned it) unless FORCE=1.
DIR ?= certs
certs:
	FORCE=$(FORCE) certs/make-certs.sh $(DIR) $(SAN)

# Prints one table of figures and ratios (see README, "Reading make bench").
bench:
	$(CARGO) bench --bench bench

# The same table with sftp, rsync and Unison beside fos: installs openssh-server, rsync
# and unison if needed and runs a private sshd on 127.0.0.1 with its own config and
# keys, stopped afterwards.
bench-peers:
	@test -x /usr/sbin/sshd && command -v sftp >/dev/null && command -v rsync >/dev/null && \
		command -v unison >/dev/null || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server openssh-client rsync unison; }
	@dir=$$(mktemp -d); port=$$(tests/benches/sftp-peer.sh start $$dir) || exit 1; \
	FOS_BENCH_SFTP="$$port $$dir/client_key $$dir" $(CARGO) bench --bench bench; status=$$?; \
	tests/benches/sftp-peer.sh stop $$dir; rm -rf $$dir; exit $$status

# A short, bounded fuzzing run of the frame decoder and the command/path parsers
# (cargo-fuzz with libFuzzer; RUSTC_BOOTSTRAP lets the stable toolchain build it).
FUZZ_SECONDS ?= 30
fuzz:
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	cd tests/fuzz && for t in frame command; do \
		RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --fuzz-dir . --sanitizer none $$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

clean:
	$(CARGO) clean
	rm -rf server_storage
