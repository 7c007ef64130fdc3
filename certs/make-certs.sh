#!/usr/bin/env bash
# Makes a fresh self-signed certificate and key that both fos and the Python tool
# accept: X.509 v3, CA:FALSE, a subjectAltName, ECDSA P-256, ten years.
#
#   certs/make-certs.sh [DIR] [SAN]
#
# DIR defaults to certs/, SAN to "DNS:localhost,IP:127.0.0.1,IP:::1"; add this
# server's names and addresses for a real deployment, e.g.
#   certs/make-certs.sh certs "DNS:files.lan,IP:127.0.0.1"
# Copy cert.pem to every client (it is the pin); keep key.pem on the server, mode 0600.
# An existing DIR/cert.pem is not replaced unless FORCE=1: every client pinned it.
set -euo pipefail
dir=${1:-certs}
san=${2:-DNS:localhost,IP:127.0.0.1,IP:::1}
cn=${CERT_CN:-fos}
if [ -e "$dir/cert.pem" ] && [ "${FORCE:-0}" != 1 ]; then
  echo "make-certs: $dir/cert.pem exists and clients may have pinned it; not replaced." >&2
  echo "  Write elsewhere with DIR=other/dir, or replace it with FORCE=1." >&2
  exit 1
fi
mkdir -p "$dir"
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$dir/key.pem.new" -out "$dir/cert.pem.new" -days 3650 -subj "/CN=$cn" \
  -addext "subjectAltName=$san" \
  -addext "basicConstraints=critical,CA:FALSE" \
  -addext "keyUsage=critical,digitalSignature" \
  -addext "extendedKeyUsage=serverAuth" 2>/dev/null
chmod 600 "$dir/key.pem.new"
chmod 644 "$dir/cert.pem.new"
mv "$dir/key.pem.new" "$dir/key.pem"
mv "$dir/cert.pem.new" "$dir/cert.pem"
echo "new certificate in $dir/cert.pem (SHA-256 $(openssl x509 -in "$dir/cert.pem" -noout -fingerprint -sha256 | cut -d= -f2))"
