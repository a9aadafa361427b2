#!/usr/bin/env bash
# Generate labkit's Python client (clients/python) from the web app's OpenAPI document, as a phone-app team would.
#
#   bash scripts/generate_client.sh          # rewrites clients/openapi.json and clients/python/
#   bash scripts/generate_client.sh DIR      # writes DIR/openapi.json and DIR/python/ instead (the drift test)
#
# The document is labkit.web.create_app(Settings()).openapi() with labkit's defaults (the LABKIT_* environment is
# ignored): no server, no Kafka. The generator is openapi-python-client at the version pyproject.toml's test extra
# pins (`bash scripts/setup.sh` installs it); its settings are clients/openapi-python-client.yaml. Never edit
# clients/python by hand: change the API (labkit/web/contract.py, labkit/web/app.py) and run this again;
# tests/test_generated_client.py fails while the committed client differs from what this writes.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-clients}
PYTHON=${PYTHON:-.venv/bin/python}
BIN=$(cd "$(dirname "$PYTHON")" && pwd)  # absolute: the post hooks run in the output folder
CONFIG=clients/openapi-python-client.yaml

pinned=$(sed -n 's/.*"openapi-python-client==\([0-9.]*\).*/\1/p' pyproject.toml)
installed=$("$PYTHON" -c 'from importlib.metadata import version; print(version("openapi-python-client"))' 2>/dev/null \
  || echo none)
if [ -z "$pinned" ] || [ "$installed" != "$pinned" ]; then
  echo "generate_client: openapi-python-client ${installed} is installed, pyproject.toml pins '${pinned}':" \
    "run \`bash scripts/setup.sh\` (or \`$PYTHON -m pip install openapi-python-client==${pinned}\`), then again." >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PYTHON" - "$work/openapi.json" <<'EOF'
import json
import os
import sys

for name in [name for name in os.environ if name.startswith("LABKIT_")]:
    del os.environ[name]  # the document of labkit's defaults, whatever this shell has set

from labkit.config import Settings
from labkit.web import create_app

document = create_app(Settings()).openapi()
with open(sys.argv[1], "w", encoding="utf-8") as file:
    file.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
EOF
# The post hooks (ruff) come from the same environment as the generator.
PATH="$BIN:$PATH" "$BIN/openapi-python-client" generate --path "$work/openapi.json" --config "$CONFIG" \
  --meta uv --output-path "$work/python" --fail-on-warning

mkdir -p "$OUT"
rm -rf "$OUT/python"
mv "$work/python" "$OUT/python"
mv "$work/openapi.json" "$OUT/openapi.json"
echo "generate_client: wrote $OUT/openapi.json and $OUT/python/ (openapi-python-client $pinned)"
