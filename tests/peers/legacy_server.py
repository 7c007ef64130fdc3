#!/usr/bin/env python3
"""A stand-in for the Python tool's server.py, written from the observed wire protocol
(see docs/PROTOCOL.md, "Legacy protocol"), for fos's compatibility tests. Standard
library only. One thread per connection; every message is one send() and is read with
one recv(4096). Like the original it checks no path on put and answers a get of a
missing file with a port, an empty stream and a red error.

Usage: legacy_server.py --bind 127.0.0.1 --cert C --key K --users U --root R [--name N]
Prints "listening PORT GREETPORT" on stdout once both ports are bound (port 0 = any).
"""
import argparse
import os
import socket
import ssl
import sys
import threading

GREEN, RED, BLUE, RESET = "\x1b[32m", "\x1b[31m", "\x1b[34m", "\x1b[0m"


def recv(sock, n):
    """One recv, acknowledged at once. The real server was measured at ~2 ms per login
    and ~10 ms per 1 MiB get/put on loopback; without this and TCP_NODELAY (see
    fast()), this stand-in waits on delayed ACKs (~40 ms each) where the real one does
    not, and would flatter fos in `make bench`."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
    except (AttributeError, OSError):
        pass
    return sock.recv(n)


def fast(sock):
    """Small writes leave at once (see recv())."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def load_users(path):
    users = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if ":" in line:
                u, p = line.split(":", 1)
                users[u] = p
    return users


class Session:
    def __init__(self, conn, args, ctx):
        self.conn, self.args, self.ctx = conn, args, ctx

    def send(self, text):
        self.conn.sendall(text.encode() if isinstance(text, str) else text)

    def run(self):
        mode = recv(self.conn, 4096).decode(errors="replace")
        if mode.startswith("ping"):
            self.send(self.args.name)
            return
        if not mode.startswith("fs"):
            return
        creds = recv(self.conn, 4096).decode(errors="replace")
        parts = creds.split(":")
        users = load_users(self.args.users)
        if len(parts) != 2 or users.get(parts[0]) != parts[1]:
            self.send("invalid credentials")
            return
        self.root = os.path.join(self.args.root, parts[0])
        os.makedirs(self.root, exist_ok=True)
        self.cwd = self.root
        self.send("accept")
        while True:
            data = recv(self.conn, 4096)
            if not data:
                return
            words = data.decode(errors="replace").split()
            if not words:
                self.send(f"{RED}Error handling command: no command{RESET}\n")
                continue
            cmd, args = words[0], words[1:]
            if cmd == "exit":
                return
            try:
                self.send(self.command(cmd, args))
            except Exception as e:  # the original replies with the exception text
                self.send(f"{RED}{e}{RESET}\n")

    def command(self, cmd, args):
        if cmd == "ls":
            names = sorted(os.listdir(os.path.join(self.cwd, *args)))
            return "\t".join(names) + "\n" if names else f"{BLUE}No files found{RESET}\n"
        if cmd == "cat":
            with open(os.path.join(self.cwd, args[0]), "rb") as f:
                return f.read(1024).decode() + "\n"
        if cmd == "cd":
            target = os.path.realpath(os.path.join(self.cwd, args[0]))
            if not target.startswith(os.path.realpath(self.root)) or (target == os.path.realpath(self.root) and args[0] == ".." and self.cwd == self.root):
                return f"{RED}Access denied{RESET}\n"
            if not os.path.isdir(target):
                return f"{RED}Directory does not exist{RESET}\n"
            self.cwd = target
            return f"{GREEN}Directory changed successfully{RESET}\n"
        if cmd == "mkdir":
            os.mkdir(os.path.join(self.cwd, args[0]))
            return f"{GREEN}Directory created successfully{RESET}\n"
        if cmd == "rmdir":
            os.rmdir(os.path.join(self.cwd, args[0]))
            return f"{GREEN}Directory deleted successfully{RESET}\n"
        if cmd == "rm":
            os.remove(os.path.join(self.cwd, args[0]))
            return f"{GREEN}File deleted successfully{RESET}\n"
        if cmd in ("get", "put"):
            if not args:
                return f"{RED}No filename provided for {cmd} command.{RESET}\n"
            return self.transfer(cmd, args[0])
        return f"{RED}Unknown command{RESET}\n"

    def transfer(self, cmd, name):
        lsock = socket.socket()
        lsock.bind((self.conn.getsockname()[0], 0))
        lsock.listen(1)
        lsock.settimeout(5)
        self.send(f"{lsock.getsockname()[1]}\n")
        path = os.path.join(self.cwd, name)
        try:
            raw = fast(lsock.accept()[0])
        except socket.timeout:
            return f"{RED}Error receiving file '{name}': timed out{RESET}\n"
        finally:
            lsock.close()
        data = self.ctx.wrap_socket(raw, server_side=True)
        try:
            if cmd == "get":
                try:
                    with open(path, "rb") as f:
                        while True:
                            chunk = f.read(65536)
                            if not chunk:
                                break
                            data.sendall(chunk)
                except OSError as e:
                    return f"{RED}Error sending file '{name}': {e.strerror}{RESET}\n"
                return f"{GREEN}File sent successfully{RESET}\n"
            with open(path, "wb") as f:  # the original checks no path here
                while True:
                    chunk = recv(data, 65536)
                    if not chunk:
                        break
                    f.write(chunk)
            return f"{GREEN}File received successfully{RESET}\n"
        finally:
            try:
                data.close()
            except OSError:
                pass


def serve(lsock, args, ctx):
    while True:
        raw = fast(lsock.accept()[0])

        def handle(raw=raw):
            try:
                conn = ctx.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError):
                raw.close()
                return
            try:
                Session(conn, args, ctx).run()
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

        threading.Thread(target=handle, daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--greet-port", type=int, default=0)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--users", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--name", default="legacyhost")
    args = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    socks = []
    for port in (args.port, args.greet_port):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((args.bind, port))
        s.listen(64)
        socks.append(s)
    for s in socks[1:]:
        threading.Thread(target=serve, args=(s, args, ctx), daemon=True).start()
    print(f"listening {socks[0].getsockname()[1]} {socks[1].getsockname()[1]}", flush=True)
    serve(socks[0], args, ctx)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
