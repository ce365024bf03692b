#!/bin/sh
# The local S3 test image's entrypoint: s3s-fs configured through the RustFS image's variables
# (RUSTFS_ADDRESS host:port, RUSTFS_ACCESS_KEY, RUSTFS_SECRET_KEY, RUSTFS_VOLUMES data directory).
set -eu
address=${RUSTFS_ADDRESS:-0.0.0.0:9000}
: "${RUSTFS_ACCESS_KEY:?RUSTFS_ACCESS_KEY must be set}"
: "${RUSTFS_SECRET_KEY:?RUSTFS_SECRET_KEY must be set}"
volume=${RUSTFS_VOLUMES:-/data}
mkdir -p "$volume"
exec s3s-fs --host "${address%:*}" --port "${address##*:}" \
  --access-key "$RUSTFS_ACCESS_KEY" --secret-key "$RUSTFS_SECRET_KEY" "$volume"
