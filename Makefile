# fos: the two commands a newcomer needs are `make run` and `make test`.
CARGO ?= cargo
BIND ?= 127.0.0.1
PORT ?= 5001
GREET_PORT ?= 5003

.PHONY: all build run test test-deps lint certs bench bench-peers fuzz clean

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

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

test: test-deps lint
	$(CARGO) test --lib --bins --tests

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
