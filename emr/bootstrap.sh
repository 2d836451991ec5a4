#!/usr/bin/env bash
# EMR bootstrap action: install fruits_p8 and the exact versions the tests use, on every node.
#   bootstrap.sh s3://BUCKET/PREFIX/artifacts/ID
# The artifacts folder holds the project wheel, constraints.txt (constraints/base.txt of the
# repo: the pins `make test` runs with), run.py, and optionally weights/ and wheelhouse/
# (wheels for clusters without internet access). Idempotent: a node that already has this
# exact artifact set installed does nothing. Any failure stops the bootstrap (and the cluster).
set -euo pipefail
trap 'echo "fruits_p8 bootstrap FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

ARTIFACTS="${1:?usage: bootstrap.sh s3://bucket/prefix/artifacts/ID}"
HOME_DIR=/opt/fruits_p8
PYTHON=/usr/bin/python3.11
MARKER="$HOME_DIR/.installed-$(basename "$ARTIFACTS")"

if [[ -f "$MARKER" ]]; then
  echo "fruits_p8: $(basename "$ARTIFACTS") already installed on this node"
  exit 0
fi

sudo mkdir -p "$HOME_DIR"
sudo chown "$(id -u):$(id -g)" "$HOME_DIR"
aws s3 cp --recursive --only-show-errors "$ARTIFACTS/" "$HOME_DIR/artifacts/"

if [[ ! -x "$PYTHON" ]]; then
  sudo dnf install -y -q python3.11 python3.11-pip
fi
"$PYTHON" -m pip --version

PIP_ARGS=(--quiet --no-cache-dir -c "$HOME_DIR/artifacts/constraints.txt")
if [[ -d "$HOME_DIR/artifacts/wheelhouse" ]]; then
  PIP_ARGS+=(--no-index --find-links "$HOME_DIR/artifacts/wheelhouse")
fi
# EMR provides Spark (and pyspark) itself: the wheel is installed without the pip pyspark.
sudo "$PYTHON" -m pip install "${PIP_ARGS[@]}" --no-deps "$HOME_DIR"/artifacts/fruits_p8-*.whl
sudo "$PYTHON" -m pip install "${PIP_ARGS[@]}" -r "$HOME_DIR/artifacts/requirements.txt"

if [[ -d "$HOME_DIR/artifacts/weights" ]]; then
  mkdir -p "$HOME_DIR/weights"
  cp "$HOME_DIR"/artifacts/weights/* "$HOME_DIR/weights/"
fi
cp "$HOME_DIR/artifacts/run.py" "$HOME_DIR/run.py"

"$PYTHON" - <<'PY'
import fruits_p8, tensorflow, PIL, pyarrow
from fruits_p8.features.backbones import lite0_package_file
assert lite0_package_file().is_file()
print("fruits_p8", fruits_p8.__version__, "tensorflow", tensorflow.__version__, "ready")
PY
touch "$MARKER"
