#!/bin/sh
# Self-signed TLS material for the files in deploy/: one private CA and a certificate for the
# Redis nodes and one for the cloud tier, signed by it. The team edges trust the CA
# (--redis-ca-file, --cloud-ca-file); nothing else needs to.
#
#   deploy/gen-certs.sh [OUT_DIR]        # default: deploy/secrets/tls
#
# Writes OUT_DIR/ca.pem (the CA certificate), ca.key (the CA key: keep it offline, it is only
# needed to issue certificates again), redis.pem/redis.key, cloud.pem/cloud.key. An existing CA
# is reused, so running it again renews the service certificates without changing what the
# edges trust. Certificates are valid for PERIODIC_CERT_DAYS days (default 825).
#
# Names (subjectAltName): the Redis certificate covers the compose hostnames redis-1..redis-6,
# any pod of the headless service redis-cluster-headless (Kubernetes), localhost and
# 127.0.0.1; the cloud certificate covers cloud (compose), periodic-cloud (Kubernetes),
# localhost and 127.0.0.1. Add yours with EXTRA_REDIS_SANS / EXTRA_CLOUD_SANS, e.g.
# EXTRA_CLOUD_SANS=DNS:periodic-cloud.example.com. The Redis nodes must announce these
# hostnames (cluster-announce-hostname and cluster-preferred-endpoint-type hostname, as
# deploy/docker-compose.yml does), since clients check the name of every node they are sent to.
set -eu

out=${1:-$(dirname "$0")/secrets/tls}
days=${PERIODIC_CERT_DAYS:-825}
command -v openssl >/dev/null || { echo "gen-certs.sh: openssl is needed" >&2; exit 1; }
mkdir -p "$out"
chmod 700 "$out"
cd "$out"

if [ ! -f ca.key ] || [ ! -f ca.pem ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
        -days 3650 -subj "/CN=Periodic deployment CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    chmod 600 ca.key
fi

# issue NAME SANS: a P-256 key and a certificate for NAME signed by the CA.
issue() {
    name=$1
    sans=$2
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$name.key" -out "$name.csr" -subj "/CN=$name" 2>/dev/null
    printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n' "$sans" > "$name.ext"
    openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$name.pem" -days "$days" -extfile "$name.ext" 2>/dev/null
    rm -f "$name.csr" "$name.ext"
    # The containers run as their own users (redis, uid 10001), which read the key through a
    # bind mount with the host file's mode; the directory stays private to its owner.
    chmod 644 "$name.key"
}

redis_sans="DNS:redis-1,DNS:redis-2,DNS:redis-3,DNS:redis-4,DNS:redis-5,DNS:redis-6,DNS:*.redis-cluster-headless,DNS:*.redis-cluster-headless.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1"
cloud_sans="DNS:cloud,DNS:periodic-cloud,DNS:periodic-cloud.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1"
issue redis "$redis_sans${EXTRA_REDIS_SANS:+,$EXTRA_REDIS_SANS}"
issue cloud "$cloud_sans${EXTRA_CLOUD_SANS:+,$EXTRA_CLOUD_SANS}"
rm -f ca.srl
echo "wrote $(pwd)/ca.pem, redis.pem, redis.key, cloud.pem, cloud.key (CA key: $(pwd)/ca.key)"
