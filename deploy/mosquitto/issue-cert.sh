#!/usr/bin/env bash
# Issues TLS certificates for the Velo MQTT fleet from a local CA.
#   issue-cert.sh DIR ca                    create DIR/ca.pem + ca.key (once)
#   issue-cert.sh DIR server NAME HOST…     broker certificate (SAN: each HOST, IP or DNS)
#   issue-cert.sh DIR client NAME           gateway (NAME = gateway id) or ops client
# Keys are written mode 0600. Certificates last 825 days (CA: 10 years).
set -euo pipefail
dir=${1:?usage: issue-cert.sh DIR ca|server|client [NAME [HOST…]]}
kind=${2:?usage: issue-cert.sh DIR ca|server|client [NAME [HOST…]]}
umask 077
mkdir -p "$dir"
case "$kind" in
ca)
  [ -e "$dir/ca.key" ] && { echo "issue-cert: $dir/ca.key exists; not overwriting" >&2; exit 1; }
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=Velo MQTT CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  chmod 644 "$dir/ca.pem"
  echo "$dir/ca.pem"
  ;;
server|client)
  name=${3:?issue-cert: NAME required}
  case "$name" in *[/+#\ ]*) echo "issue-cert: NAME must not contain / + # or spaces" >&2; exit 2;; esac
  [ -e "$dir/ca.key" ] || { echo "issue-cert: no CA in $dir (run: issue-cert.sh $dir ca)" >&2; exit 1; }
  ext=$(mktemp); trap 'rm -f "$ext" "$dir/$name.csr"' EXIT
  if [ "$kind" = server ]; then
    shift 3
    [ $# -gt 0 ] || { echo "issue-cert: a server certificate needs at least one HOST" >&2; exit 2; }
    san=""
    for h in "$@"; do
      if [[ "$h" =~ ^[0-9.]+$ || "$h" == *:* ]]; then san+="IP:$h,"; else san+="DNS:$h,"; fi
    done
    printf 'extendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "${san%,}" > "$ext"
  else
    printf 'extendedKeyUsage=clientAuth\n' > "$ext"
  fi
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$name" \
    -keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 825 -extfile "$ext" -out "$dir/$name.pem" 2>/dev/null
  chmod 600 "$dir/$name.key"; chmod 644 "$dir/$name.pem"
  echo "$dir/$name.pem $dir/$name.key"
  ;;
*) echo "issue-cert: unknown kind $kind (ca, server, client)" >&2; exit 2;;
esac
