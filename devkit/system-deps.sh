#!/usr/bin/env bash
# What the local stack and the tests need from the system, installed from Debian's
# packages (with sudo when not root) on Debian 12 or 13, or Ubuntu; `make setup` runs it.
#
#   python3-venv         where the system Python has no venv/ensurepip
#   redis-server         the read model's store
#   a Java 17+ runtime   DynamoDB Local (openjdk-17 where packaged, else 21, else default)
#   nodejs, npm          the npm packages (DynamoDB Local's jar, the Node.js example)
#   chromium             the results page's browser tests (Playwright drives it)
#   curl                 the README's Server-Sent Events example (tests/test_readme.py runs it)
#
# The pinned npm packages need Node.js 22 or newer; where the system's is older, Node 22
# comes from the npm registry into .tools/node (the Makefile puts it first on PATH).
set -euo pipefail

PYTHON=${PYTHON:-python3}
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

java_ok() {
  command -v java >/dev/null || return 1
  local major
  major=$(java -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print v[1]; exit}')
  [ "${major:-0}" -ge 17 ]
}

candidate() {  # the first of the packages Debian can install here
  local package
  for package in "$@"; do
    # Not `grep -q`: it exits at the first match, apt-cache then dies of SIGPIPE, and
    # pipefail turns a found candidate into a failure (seen on a fresh bookworm root).
    if apt-cache policy "$package" 2>/dev/null | grep 'Candidate: [^(]' >/dev/null; then
      echo "$package"
      return 0
    fi
  done
  return 1
}

missing=()
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v chromium >/dev/null || missing+=(chromium chromium-driver)
command -v npm >/dev/null || missing+=(nodejs npm)
command -v curl >/dev/null || missing+=(curl)
java_ok || missing+=(java)

if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  packages=()
  for package in "${missing[@]}"; do
    if [ "$package" = java ]; then
      packages+=("$(candidate openjdk-17-jre-headless openjdk-21-jre-headless default-jre-headless)")
    else
      packages+=("$package")
    fi
  done
  echo "installing: ${packages[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 22 ] && [ ! -x .tools/node/node_modules/.bin/node ]; then
  echo "Node.js $node_major is older than the npm packages accept: Node 22 into .tools/node"
  npm install --no-save --no-audit --no-fund --loglevel=error --prefix .tools/node node@22
fi
