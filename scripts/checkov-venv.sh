#!/usr/bin/env bash
# Creates .venv-checkov: checkov in a virtualenv of its own, so its many pinned dependencies never
# meet the project's (.venv). Idempotent: an existing, working checkov is left alone.
# Used by `make checkov-venv` (a prerequisite of `make test`) and by tests/chart/test_checkov.py.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-checkov
SPEC='checkov>=3.2,<4'
PYTHON=${PYTHON:-python3}
if [ -x "$VENV/bin/checkov" ] && "$VENV/bin/checkov" --version >/dev/null 2>&1; then
    exit 0
fi
echo "creating $VENV ($SPEC); this takes a minute the first time" >&2
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$SPEC" 2> >(grep -v "^WARNING: Location" >&2)
"$VENV/bin/checkov" --version >/dev/null
