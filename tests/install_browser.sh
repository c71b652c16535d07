#!/usr/bin/env bash
# What tests/test_web.py drives, installed when absent: Debian's chromium (apt-get, as root) and ONNX
# Runtime Web beside the page's template (npm install in export/browser, the version package.json pins).
# Playwright for Python comes with pip install ".[test]"; it never downloads a browser of its own.
# Where either cannot be installed this says so in one line and the browser tests skip.
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get install -y -qq chromium || (apt-get update -qq && apt-get install -y -qq chromium)) >/dev/null 2>&1
  fi
  command -v chromium >/dev/null || echo "chromium could not be installed (apt-get install -y chromium as root): the browser tests will skip"
fi
if [ ! -f export/browser/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs ]; then
  if command -v npm >/dev/null; then
    (cd export/browser && npm install --no-audit --no-fund --loglevel=error >/dev/null) ||
      echo "npm install in export/browser failed: the browser tests that need a local ONNX Runtime Web will skip"
  else
    echo "npm is not installed: the browser tests that need a local ONNX Runtime Web will skip"
  fi
fi
exit 0
