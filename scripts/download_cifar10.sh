#!/usr/bin/env bash
# Downloads the official CIFAR-10 binary version into ./data (or $1) and checks
# its SHA-256 before extracting: data/cifar-10-batches-bin/{data_batch_1..5,
# test_batch}.bin and batches.meta.txt. Not for CI: it needs the network and
# 163 MiB. Usage: scripts/download_cifar10.sh [DATA_DIR]
set -euo pipefail

DATA_DIR="${1:-./data}"
URL="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
SHA256="c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
ARCHIVE="$DATA_DIR/cifar-10-binary.tar.gz"
TARGET="$DATA_DIR/cifar-10-batches-bin"

if [[ -f "$TARGET/data_batch_1.bin" && -f "$TARGET/test_batch.bin" ]]; then
  echo "CIFAR-10 already present in $TARGET"
  exit 0
fi

mkdir -p "$DATA_DIR"

verify() {
  local got
  got="$(sha256sum "$1" | cut -d' ' -f1)"
  [[ "$got" == "$SHA256" ]]
}

if [[ -f "$ARCHIVE" ]] && verify "$ARCHIVE"; then
  echo "using the already downloaded $ARCHIVE"
else
  echo "downloading $URL -> $ARCHIVE"
  tmp="$ARCHIVE.part"
  rm -f "$tmp"
  ok=0
  if command -v curl >/dev/null 2>&1; then
    curl -fL --retry 3 --connect-timeout 20 -o "$tmp" "$URL" && ok=1
  elif command -v wget >/dev/null 2>&1; then
    wget -O "$tmp" --tries=3 --timeout=20 "$URL" && ok=1
  else
    echo "error: neither curl nor wget is installed" >&2
  fi
  if [[ $ok -ne 1 ]]; then
    rm -f "$tmp"
    cat >&2 <<MSG
error: could not download $URL (offline?).
Looked for an existing copy at:
  $TARGET/data_batch_1.bin
  $ARCHIVE
To fix: on a machine with network access download
  $URL
(SHA-256 $SHA256), copy it to $ARCHIVE and run this script again,
or point Janus at an extracted copy with --data-dir DIR / JANUS_DATA_DIR=DIR
(DIR containing cifar-10-batches-bin/).
MSG
    exit 1
  fi
  if ! verify "$tmp"; then
    echo "error: SHA-256 of the download does not match $SHA256; file kept as $tmp" >&2
    exit 1
  fi
  mv "$tmp" "$ARCHIVE"
fi

echo "extracting into $DATA_DIR"
tar -xzf "$ARCHIVE" -C "$DATA_DIR"
for f in data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin; do
  size=$(stat -c %s "$TARGET/$f")
  if [[ "$size" -ne 30730000 ]]; then
    echo "error: $TARGET/$f has $size bytes, expected 30730000" >&2
    exit 1
  fi
done
echo "CIFAR-10 ready in $TARGET"
