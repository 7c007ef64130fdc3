#!/usr/bin/env bash
# Regenerates the certificates the tests use (checked in, so tests need no openssl):
#   cert.pem / key.pem               v3, like `make certs`
#   other-cert.pem / other-key.pem   v3, another key: "untrusted" for clients pinning cert.pem
#   v1-cert.pem / v1-key.pem         X.509 v1 RSA, as the Python tool's ssl_certificates.sh makes them
#   expired-cert.pem / expired-key.pem   v1, already expired
set -euo pipefail
cd "$(dirname "$0")"
../../certs/make-certs.sh . >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CERT_CN=other ../../certs/make-certs.sh "$tmp" >/dev/null
mv "$tmp/cert.pem" other-cert.pem; mv "$tmp/key.pem" other-key.pem
openssl genrsa -out v1-key.pem 2048 2>/dev/null
openssl req -new -key v1-key.pem -out "$tmp/v1.csr" -subj "/CN=legacyhost"
openssl x509 -req -days 7300 -in "$tmp/v1.csr" -signkey v1-key.pem -out v1-cert.pem 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/ec.pem"
openssl pkcs8 -topk8 -nocrypt -in "$tmp/ec.pem" -out expired-key.pem
openssl req -new -key expired-key.pem -out "$tmp/exp.csr" -subj "/CN=expired"
openssl x509 -req -days -1 -in "$tmp/exp.csr" -signkey expired-key.pem -out expired-cert.pem 2>/dev/null
chmod 600 ./*key.pem
echo "test certificates regenerated in $(pwd)"
