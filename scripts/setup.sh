#!/usr/bin/env bash
# Installs what digitbench needs, idempotently: Debian packages, the virtualenv with pinned
# versions (requirements.lock) and the npm packages of the browser pages. Quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(tesseract-ocr tesseract-ocr-eng chromium chromium-driver fonts-dejavu-core fonts-liberation
              libgl1 libglib2.0-0)  # the last two: OpenCV (rapidocr)
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(nodejs npm)
command -v java >/dev/null 2>&1 || APT_PACKAGES+=(openjdk-17-jre-headless)
command -v python3 >/dev/null 2>&1 || APT_PACKAGES+=(python3 python3-venv)
STAMPS=.setup-stamps
mkdir -p "$STAMPS"

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "setup: installing Debian packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    python3 -m venv .venv
fi
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$STAMPS/venv" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing Python packages (requirements.lock)"
    log="$STAMPS/pip.log"
    { .venv/bin/python -m pip install --disable-pip-version-check -r requirements.lock &&
      .venv/bin/python -m pip install --disable-pip-version-check --no-deps -e .; } >"$log" 2>&1 ||
        { tail -n 40 "$log"; echo "setup: pip install failed (full log: $log)"; exit 1; }
    echo "$want" > "$STAMPS/venv"
fi

# npm folders: the pages' bundles (TF.js, Tesseract.js, ONNX Runtime Web) and Selenium Grid's server jar
for WEB in backends/tfjs/web backends/tesseractjs/web backends/ortweb/web scripts/grid; do
    [ -f "$WEB/package-lock.json" ] || continue
    stamp="$STAMPS/npm-$(echo "$WEB" | tr / -)"
    want=$(sha256sum "$WEB/package-lock.json" | cut -d' ' -f1)
    if [ ! -d "$WEB/node_modules" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        echo "setup: installing npm packages in $WEB"
        (cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
        echo "$want" > "$stamp"
    fi
done

# The minimal TF.js bundles (--tfjs-bundle minimal), built offline from the installed packages.
WEB=backends/tfjs/web
want=$(cat "$WEB/package-lock.json" "$WEB/build.mjs" "$WEB"/bundles/*.js | sha256sum | cut -d' ' -f1)
if [ ! -d "$WEB/build" ] || [ "$(cat "$STAMPS/bundles" 2>/dev/null)" != "$want" ]; then
    echo "setup: building the minimal TF.js bundles (esbuild)"
    (cd "$WEB" && node build.mjs)
    echo "$want" > "$STAMPS/bundles"
fi
