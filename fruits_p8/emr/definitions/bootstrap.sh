#!/usr/bin/env bash
# EMR bootstrap action: install fruits_p8 and the exact versions the tests use, on every node.
#   bootstrap.sh s3://BUCKET/PREFIX/artifacts/ID
# The artifacts folder holds the project wheel, requirements.txt, constraints.txt (the pins of
# `tox -e spark35`: PySpark 3.5.5 as on EMR 7.9.0, numpy < 2), run.py, and optionally
# wheelhouse/ (every wheel: then nothing is fetched from PyPI). Idempotent: a node that already
# has this exact artifact set installed does nothing. Any failure stops the bootstrap (and the
# cluster); its stderr is in LOG_URI/CLUSTER_ID/node/INSTANCE_ID/bootstrap-actions/1/.
# FRUITS_P8_HOME, FRUITS_P8_PYTHON and FRUITS_P8_SCRATCH move the paths (the tests use them).
set -euo pipefail
trap 'echo "fruits_p8 bootstrap FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

ARTIFACTS="${1:?usage: bootstrap.sh s3://bucket/prefix/artifacts/ID}"
HOME_DIR="${FRUITS_P8_HOME:-/opt/fruits_p8}"
PYTHON="${FRUITS_P8_PYTHON:-/usr/bin/python3.11}"
# pip unpacks the TensorFlow closure (~2 GB) in its temporary folder: put that on the EBS
# volume EMR mounts at /mnt rather than on the root volume.
SCRATCH="${FRUITS_P8_SCRATCH:-/mnt/tmp/fruits_p8}"
MARKER="$HOME_DIR/.installed-$(basename "$ARTIFACTS")"

if [[ -f "$MARKER" ]]; then
  echo "fruits_p8: $(basename "$ARTIFACTS") already installed on this node"
  exit 0
fi

sudo mkdir -p "$HOME_DIR"
sudo chown "$(id -u):$(id -g)" "$HOME_DIR"
aws s3 cp --recursive --only-show-errors "$ARTIFACTS/" "$HOME_DIR/artifacts/"
sudo mkdir -p "$SCRATCH" || SCRATCH="$(mktemp -d)"

# EMR 7.1+ ships python3.11, but not always its pip module: check pip itself.
if [[ ! -x "$PYTHON" ]]; then
  sudo dnf install -y -q python3.11
fi
if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
  sudo dnf install -y -q python3.11-pip || sudo "$PYTHON" -m ensurepip --default-pip
fi
"$PYTHON" -m pip --version

# PIP_BREAK_SYSTEM_PACKAGES: newer pips refuse a distribution's Python otherwise; older ignore it.
PIP=(sudo env TMPDIR="$SCRATCH" PIP_BREAK_SYSTEM_PACKAGES=1 "$PYTHON" -m pip install --quiet
     --no-cache-dir -c "$HOME_DIR/artifacts/constraints.txt")
if [[ -d "$HOME_DIR/artifacts/wheelhouse" ]]; then
  PIP+=(--no-index --find-links "$HOME_DIR/artifacts/wheelhouse")
fi
# EMR provides Spark (and pyspark) itself: the wheel is installed without the pip pyspark.
"${PIP[@]}" --no-deps "$HOME_DIR"/artifacts/fruits_p8-*.whl
"${PIP[@]}" -r "$HOME_DIR/artifacts/requirements.txt"
cp "$HOME_DIR/artifacts/run.py" "$HOME_DIR/run.py"

"$PYTHON" - <<'PY'
import fruits_p8, matplotlib, tensorflow, PIL, pyarrow
from fruits_p8.features.backbones import lite0_package_file
assert lite0_package_file().is_file()
print("fruits_p8", fruits_p8.__version__, "tensorflow", tensorflow.__version__, "ready")
PY
touch "$MARKER"
