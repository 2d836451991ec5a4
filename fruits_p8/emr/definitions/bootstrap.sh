#!/usr/bin/env bash
# EMR bootstrap action: install fruits_p8 and the exact versions the tests use, on every node,
# into a private virtualenv (never the system Python: pip cannot replace packages an RPM put
# there, and none of its packages are touched).
#   bootstrap.sh s3://BUCKET/PREFIX/artifacts/ID [s3://BUCKET/PREFIX/wheelhouse/CLOSURE]
# The artifacts folder holds the project wheel, requirements.txt, constraints.txt (the pins of
# `tox -e spark35`: PySpark 3.5.5 as on EMR 7.9.0, numpy < 2) and run.py. With a wheelhouse
# (made once by `fruits-p8 emr prepare`: every wheel of the closure and pip, and
# requirements.lock with their hashes) the install uses no package index at all; without one
# it resolves the pins from PyPI. Idempotent: a node that already has this exact artifact set
# installed does nothing. Any failure stops the bootstrap (and the cluster); its stderr is in
# LOG_URI/CLUSTER_ID/node/INSTANCE_ID/bootstrap-actions/1/.
# FRUITS_P8_HOME, FRUITS_P8_PYTHON and FRUITS_P8_SCRATCH move the paths (the tests use them).
set -euo pipefail
trap 'echo "fruits_p8 bootstrap FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR
umask 022  # YARN's containers run as other users: the venv must be readable by all

ARTIFACTS="${1:?usage: bootstrap.sh s3://bucket/prefix/artifacts/ID [s3://.../wheelhouse/ID]}"
WHEELHOUSE="${2:-}"
HOME_DIR="${FRUITS_P8_HOME:-/opt/fruits_p8}"
PYTHON="${FRUITS_P8_PYTHON:-/usr/bin/python3.11}"
VENV="$HOME_DIR/venv"  # configurations.json points Spark's Python here
VPY="$VENV/bin/python"
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
if [[ -n "$WHEELHOUSE" ]]; then
  aws s3 cp --recursive --only-show-errors "$WHEELHOUSE/" "$HOME_DIR/wheelhouse/"
  if [[ ! -f "$HOME_DIR/wheelhouse/requirements.lock" ]]; then
    echo "fruits_p8 bootstrap FAILED: no complete wheelhouse at $WHEELHOUSE (run" \
         "\`fruits-p8 emr prepare\` for this version first)" >&2
    exit 1
  fi
fi
if sudo mkdir -p "$SCRATCH"; then
  sudo chown "$(id -u):$(id -g)" "$SCRATCH"
else
  SCRATCH="$(mktemp -d)"
fi

if [[ ! -x "$PYTHON" ]]; then
  sudo dnf install -y -q python3.11
fi
if [[ ! -x "$VPY" ]]; then
  "$PYTHON" -m venv --without-pip "$VENV"
fi
if ! "$VPY" -m pip --version >/dev/null 2>&1; then
  if [[ -n "$WHEELHOUSE" ]]; then  # pip runs from its own wheel to install itself
    PIP_WHEEL="$(ls "$HOME_DIR"/wheelhouse/pip-*.whl | head -n 1)"
    "$VPY" "$PIP_WHEEL/pip" install --quiet --no-index --no-cache-dir \
      --find-links "$HOME_DIR/wheelhouse" pip
  elif ! "$VPY" -m ensurepip --default-pip; then
    sudo dnf install -y -q python3.11-pip
    "$PYTHON" -m pip --python "$VPY" install --quiet pip
  fi
fi
"$VPY" -m pip --version

PIP=(env TMPDIR="$SCRATCH" "$VPY" -m pip install --quiet --no-cache-dir
     --disable-pip-version-check)
if [[ -n "$WHEELHOUSE" ]]; then
  "${PIP[@]}" --no-index --find-links "$HOME_DIR/wheelhouse" --require-hashes \
    -r "$HOME_DIR/wheelhouse/requirements.lock"
else
  "${PIP[@]}" -c "$HOME_DIR/artifacts/constraints.txt" -r "$HOME_DIR/artifacts/requirements.txt"
fi
# EMR provides Spark (and pyspark) itself: the wheel is installed without the pip pyspark.
"${PIP[@]}" --no-index --no-deps "$HOME_DIR"/artifacts/fruits_p8-*.whl
cp "$HOME_DIR/artifacts/run.py" "$HOME_DIR/run.py"

# The check: fruits_p8 and every module of each requirement imports in the venv.
"$VPY" - "$HOME_DIR/artifacts/requirements.txt" <<'PY'
import importlib, re, sys
from importlib import metadata

def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()

wanted = {canonical(re.split(r"[<>=!~\[;\s]", line.strip())[0])
          for line in open(sys.argv[1]) if line.strip() and not line.startswith("#")}
found = {canonical(dist) for dists in metadata.packages_distributions().values()
         for dist in dists}
missing = wanted - found
assert not missing, f"not installed: {sorted(missing)}"
modules = sorted(module for module, dists in metadata.packages_distributions().items()
                 if {canonical(d) for d in dists} & wanted and module.isidentifier()
                 and not module.startswith("_"))
for module in modules:
    importlib.import_module(module)
import fruits_p8
print("fruits_p8", fruits_p8.__version__, "with", ", ".join(modules), "ready in", sys.prefix)
PY
touch "$MARKER"
