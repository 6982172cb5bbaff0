#!/usr/bin/env bash
# Static checks of the Odoo addon (run by .ci/run): pylint-odoo's mandatory checks
# (the "odoolint" group) for Odoo 18.0, every XML file well-formed, every Python file
# compiles. Needs python3 and pip; installs the pinned pylint-odoo when missing.
set -euo pipefail
cd "$(dirname "$0")"

PYLINT_ODOO_VERSION=10.0.12
installed=$(python3 -c 'import importlib.metadata as m; print(m.version("pylint-odoo"))' 2>/dev/null || true)
if [ "$installed" != "$PYLINT_ODOO_VERSION" ]; then
    python3 -m pip install --quiet "pylint-odoo==$PYLINT_ODOO_VERSION"
fi

python3 -m pylint --load-plugins=pylint_odoo --disable=all --enable=odoolint \
    --valid-odoo-versions=18.0 --manifest-required-authors=iap-sidecar \
    --score=n iap_sidecar
echo "pylint-odoo: clean"

python3 - <<'PY'
import pathlib
import sys
import xml.etree.ElementTree as ET

root = pathlib.Path(".")
bad = 0
xml_files = sorted(root.rglob("*.xml"))
for path in xml_files:
    try:
        ET.parse(path)
    except ET.ParseError as exc:
        print(f"{path}: not well-formed XML: {exc}")
        bad += 1
py_files = sorted(root.rglob("*.py"))
for path in py_files:
    try:
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
    except SyntaxError as exc:
        print(f"{path}: {exc}")
        bad += 1
print(f"{len(xml_files)} XML files well-formed, {len(py_files)} Python files compile"
      if not bad else f"{bad} bad files")
sys.exit(1 if bad else 0)
PY
