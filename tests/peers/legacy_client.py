#!/usr/bin/env python3
"""A stand-in for the Python tool's client.py, written from the observed wire protocol,
for fos's compatibility tests. Standard library only. It trusts exactly the certificate
in --cert (no host name check), offers no ALPN, sends each message as one TLS record and
reads each reply with one recv(4096).

Usage: legacy_client.py --port P --cert C --user U --password W [--coalesce-login]
                        [--sleep S] [--probe-data-port] CMD...
       legacy_client.py --port P --cert C --ping
Prints one JSON line per server message: {"cmd": ..., "reply": ...}; get/put add
"status" and "secs" (from the command sent to the status read, the --sleep left out),
login adds "secs" (connect, TLS handshake and login). Files for get/put are read from and written to the current directory, like
the original client (which, for get, truncates the local file first: --truncate-first).
"""
import argparse
import json
import socket
import ssl
import sys
import time


class Conn:
    """TLS over a memory BIO, so two records can be put into one TCP segment."""

    def __init__(self, host, port, ctx):
        self.sock = socket.create_connection((host, port), timeout=20)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.inc, self.out, server_side=False)
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                self.fill()
        self.flush()

    def flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            self.inc.write_eof()
        else:
            self.inc.write(data)

    def send(self, msg, flush=True):
        self.tls.write(msg)
        if flush:
            self.flush()

    def recv(self, n=4096):
        while True:
            try:
                return self.tls.read(n)
            except ssl.SSLWantReadError:
                self.fill()
            except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
                return b""

    def close(self):
        self.sock.close()


def context(cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(cert)
    return ctx


def emit(**kw):
    print(json.dumps({k: (v.decode("latin-1") if isinstance(v, bytes) else v) for k, v in kw.items()}), flush=True)


def transfer(args, ctx, conn, cmd, name, reply, started):
    try:
        port = int(reply.decode().strip())
    except ValueError:
        emit(cmd=f"{cmd} {name}", reply=reply, note="no port: nothing transferred")
        return
    if args.no_data_connection:
        # a client that vanished before it connected: the server gives up after 5 s
        status = conn.recv()
        emit(cmd=f"{cmd} {name}", reply=reply, status=status)
        return
    time.sleep(args.sleep)
    raw = socket.create_connection((args.host, port), timeout=20)
    data = ctx.wrap_socket(raw)
    extra = {}
    if args.probe_data_port:
        # a second connection to the one-shot port, as another process on this host could
        try:
            socket.create_connection((args.host, port), timeout=2).close()
            extra["second_connect"] = "accepted"
        except OSError:
            extra["second_connect"] = "refused"
    local = args.local_file or name
    if cmd == "get":
        with open(local, "wb") as f:
            while True:
                try:
                    chunk = data.recv(65536)
                except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
                    break
                if not chunk:
                    break
                f.write(chunk)
    else:
        with open(local, "rb") as f:
            data.sendall(f.read())
        data.shutdown(socket.SHUT_WR)  # a bare TCP half-close, no close_notify, like the original
    # like the original: the data socket is closed only after the status has been read
    status = conn.recv()
    data.close()
    extra["secs"] = "%.6f" % (time.perf_counter() - started - args.sleep)
    emit(cmd=f"{cmd} {name}", reply=reply, status=status, **extra)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--user", default="u")
    ap.add_argument("--password", default="p")
    ap.add_argument("--ping", action="store_true")
    ap.add_argument("--coalesce-login", action="store_true")
    ap.add_argument("--sleep", type=float, default=1.0)
    ap.add_argument("--probe-data-port", action="store_true", help="try a second connection to each data port")
    ap.add_argument("--no-data-connection", action="store_true", help="never connect to the data port; read the status")
    ap.add_argument("--local-file", help="read put data from / write get data to this file instead of NAME")
    ap.add_argument("commands", nargs="*")
    args = ap.parse_args()
    ctx = context(args.cert)
    started = time.perf_counter()
    conn = Conn(args.host, args.port, ctx)
    if args.ping:
        conn.send(b"ping")
        emit(cmd="ping", reply=conn.recv(), then=conn.recv())
        return
    if args.coalesce_login:
        conn.send(b"fs", flush=False)
        conn.send(f"{args.user}:{args.password}".encode(), flush=False)
        conn.flush()  # both records leave in one send()
    else:
        conn.send(b"fs")
        conn.send(f"{args.user}:{args.password}".encode())
    login = conn.recv()
    emit(cmd="login", reply=login, secs="%.6f" % (time.perf_counter() - started))
    if login != b"accept":
        return
    for cmd in args.commands:
        words = cmd.split()
        started = time.perf_counter()
        conn.send(cmd.encode())
        if words and words[0] == "exit":
            emit(cmd="exit", reply=conn.recv())
            return
        reply = conn.recv()
        if words and words[0] in ("get", "put") and len(words) > 1:
            transfer(args, ctx, conn, words[0], words[1], reply, started)
        else:
            emit(cmd=cmd, reply=reply)
    conn.close()


if __name__ == "__main__":
    sys.exit(main())
