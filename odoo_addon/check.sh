#!/usr/bin/env bash
# Static checks of the Odoo addon (run by .ci/run):
# - layout: one code tree (common/iap_sidecar) and, per series, a directory
#   <series>/iap_sidecar holding only its manifest and links to that tree; the manifests
#   differ in their version only, which starts with the series;
# - pylint-odoo's mandatory checks (the "odoolint" group) once per series, with that
#   series as the valid Odoo version;
# - every XML file well-formed, every Python file compiles.
# Needs python3 and pip; installs the pinned pylint-odoo when missing.
set -euo pipefail
cd "$(dirname "$0")"

SERIES=(17.0 18.0 19.0)

python3 - "${SERIES[@]}" <<'PY'
import ast
import os
import pathlib
import sys

common = pathlib.Path("common/iap_sidecar")
bad = []
manifests = {}
if (common / "__manifest__.py").exists():
    bad.append(f"{common}/__manifest__.py: the shared tree must not be a module itself")
for series in sys.argv[1:]:
    module = pathlib.Path(series, "iap_sidecar")
    entries = {path.name for path in module.iterdir()} if module.is_dir() else set()
    wanted = {path.name for path in common.iterdir() if path.name != "__pycache__"}
    for name in sorted(wanted - entries):
        bad.append(f"{module}/{name}: missing (link it to ../../{common}/{name})")
    for name in sorted(entries - wanted - {"__manifest__.py", "__pycache__"}):
        bad.append(f"{module}/{name}: not in {common} (series directories hold links only)")
    for name in sorted(wanted & entries):
        path = module / name
        target = os.readlink(path) if path.is_symlink() else None
        if target != f"../../{common}/{name}":
            bad.append(f"{path}: must be a link to ../../{common}/{name}, is {target!r}")
    manifest = module / "__manifest__.py"
    if not manifest.is_file():
        bad.append(f"{manifest}: missing")
        continue
    values = ast.literal_eval(manifest.read_text(encoding="utf-8"))
    if not str(values.get("version", "")).startswith(series + "."):
        bad.append(f"{manifest}: version {values.get('version')!r} must start with {series}.")
    manifests[series] = {key: value for key, value in values.items() if key != "version"}
first = next(iter(manifests.values()), None)
for series, values in manifests.items():
    if values != first:
        bad.append(f"{series}/iap_sidecar/__manifest__.py differs from the others beyond its version")
for line in bad:
    print(line)
print("layout: one code tree, per-series manifests" if not bad else f"layout: {len(bad)} problems")
sys.exit(1 if bad else 0)
PY

PYLINT_ODOO_VERSION=10.0.12
installed=$(python3 -c 'import importlib.metadata as m; print(m.version("pylint-odoo"))' 2>/dev/null || true)
if [ "$installed" != "$PYLINT_ODOO_VERSION" ]; then
    python3 -m pip install --quiet "pylint-odoo==$PYLINT_ODOO_VERSION"
fi

for series in "${SERIES[@]}"; do
    # pylint does not descend into linked directories: name each package.
    python3 -m pylint --load-plugins=pylint_odoo --disable=all --enable=odoolint \
        --valid-odoo-versions="$series" --manifest-required-authors=iap-sidecar \
        --score=n "$series/iap_sidecar" "$series/iap_sidecar/models" \
        "$series/iap_sidecar/tools" "$series/iap_sidecar/tests"
    echo "pylint-odoo $series: clean"
done

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
