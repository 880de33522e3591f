#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine: Java 17, Maven and Prometheus (apt, if missing),
# a virtualenv in .venv with the pinned packages, the Kafka broker jars and the Schema Registry (Maven Central, cached).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_apt+=(maven)
command -v promtool >/dev/null || need_apt+=(prometheus)  # the rule tests and the dashboard test run it
command -v openssl >/dev/null || need_apt+=(openssl)  # the secured-broker tests make their certificates with it
command -v curl >/dev/null || need_apt+=(curl)  # deploy/registry/registry.sh waits on and configures the registry
command -v unzip >/dev/null || need_apt+=(unzip)  # ... and takes the app jar's configuration out of it at build
command -v npm >/dev/null || need_apt+=(nodejs npm)  # the AsyncAPI CLI validates asyncapi.yaml in the suite
command -v amtool >/dev/null || need_apt+=(prometheus-alertmanager)  # amtool checks the Alertmanager config
command -v chromium >/dev/null || need_apt+=(chromium)  # the report's page is opened and screenshotted in the suite
command -v gcc >/dev/null || need_apt+=(gcc)  # mypyc's C output of the core is compiled with it
python3 -c 'import os, sysconfig; os.stat(sysconfig.get_paths()["include"] + "/Python.h")' 2>/dev/null \
  || need_apt+=(python3-dev)  # ... against the interpreter's headers
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} with apt-get" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
export PIP_CACHE_DIR="$PWD/.cache/pip"
stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  rm -f .venv/.installed-*; touch "$stamp"
fi
# The core (streams/domain) compiled by mypyc into .cache/compiled-core: about 25 s, again after each change to it.
.venv/bin/python -c 'from streams.core_build import main; raise SystemExit(main())'
deploy/kafka/broker.sh fetch
deploy/registry/registry.sh build
# The AsyncAPI CLI, pinned by deploy/asyncapi/package-lock.json, into .cache/asyncapi (about 1.5 GB, once).
tools=.cache/asyncapi
tools_stamp=$tools/.installed-$(cat deploy/asyncapi/package.json deploy/asyncapi/package-lock.json | sha1sum | cut -c1-12)
if [ ! -f "$tools_stamp" ]; then
  echo "setup: installing the AsyncAPI CLI with npm into $tools" >&2
  mkdir -p "$tools"
  cp deploy/asyncapi/package.json deploy/asyncapi/package-lock.json "$tools/"
  (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error --cache "$PWD/../npm" >/dev/null)
  rm -f "$tools"/.installed-*; touch "$tools_stamp"
fi
