#!/usr/bin/env bash
# Make the TLS credentials that cluster-config/dask.yaml requires, in cluster-config/tls/
# (or the folder given): a certificate authority, and one certificate and key signed by
# it that the scheduler, the workers and the client all present. Only holders of a
# certificate signed by this CA can talk to the scheduler. Beside the folder it writes
# tls.yaml, the dask settings that point at the files (so cluster-config/tls.yaml by default).
# Keep tls/ private (mode 700, never in git or an image); copy it to every machine at the
# same path, or into a Kubernetes secret:
#   kubectl create secret generic mosaic-tls --from-file=cluster-config/tls/
set -euo pipefail
out="${1:-$(dirname "$0")/tls}"
days="${MOSAIC_TLS_DAYS:-365}"
mkdir -p "$out" && chmod 700 "$out"
out="$(cd "$out" && pwd)"
cd "$out"
openssl req -x509 -newkey rsa:3072 -nodes -sha256 -days "$days" -subj "/CN=mosaic-dask-ca" \
  -keyout ca-key.pem -out ca.pem 2>/dev/null
openssl req -newkey rsa:3072 -nodes -sha256 -subj "/CN=mosaic-dask-node" -keyout node-key.pem -out node.csr 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n' > node.ext
openssl x509 -req -sha256 -days "$days" -in node.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
  -extfile node.ext -out node.pem 2>/dev/null
rm -f node.csr node.ext ca.srl
chmod 600 ./*.pem
cat > "$(dirname "$out")/tls.yaml" <<YAML
# Written by make-tls.sh: where this machine keeps the cluster's TLS credentials.
distributed:
  comm:
    tls:
      ca-file: $out/ca.pem
      scheduler: {cert: $out/node.pem, key: $out/node-key.pem}
      worker: {cert: $out/node.pem, key: $out/node-key.pem}
      client: {cert: $out/node.pem, key: $out/node-key.pem}
YAML
echo "TLS credentials in $out (ca.pem, node.pem, node-key.pem; ca-key.pem signs more: keep it offline); settings in $(dirname "$out")/tls.yaml"
