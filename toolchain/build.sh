#!/usr/bin/env bash
# `make toolchain`: the real parts the `make test-real` tiers run, built once from the Go module
# proxy (or Debian's packages) into a cache outside the repository, then found there instantly.
#
#   pulumi                          the Pulumi CLI (engine), pinned in versions.env
#   pulumi-language-python          the Python language host (runs `pulumi up` on a project)
#   pulumi-resource-pulumi-python   the dynamic-provider plugin (the SDK's script)
#   pulumi-resource-kubernetes      the pulumi-kubernetes provider plugin
#   kube-apiserver, kube-controller-manager, etcd   a Kubernetes control plane
#   promtool                        Prometheus's rule tester (Debian's `prometheus` package)
#   actionlint                      the GitHub Actions workflow linter (`make lint`)
#
# Usage: toolchain/build.sh [component ...]    (default: all; prints the bin directory last)
# Cache: $GHA_TOOLCHAIN_HOME (default $HOME/.cache/gha-scalesets/toolchain); Go's own caches
# stay at their defaults, so a rebuild after a version bump reuses them.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
home=${GHA_TOOLCHAIN_HOME:-$HOME/.cache/gha-scalesets/toolchain}
bin=$home/bin
src=$home/src
mkdir -p "$bin" "$src"

say() { printf 'toolchain: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

need_go() {
  command -v go >/dev/null 2>&1 ||
    die "Go is not installed, and $1 must be built from the Go module proxy. Install Go 1.26+ (https://go.dev/doc/install) and run 'make toolchain' again."
  export GOTOOLCHAIN=local GOFLAGS=-mod=mod
}

# step NAME FUNCTION: runs FUNCTION unless NAME is already at its pinned version; reports time.
step() {
  local name=$1 build=$2 started=$SECONDS
  if "is_current_$build"; then
    say "$name: up to date"
    return
  fi
  say "$name: building (this takes minutes on a cold cache) ..."
  "build_$build"
  "is_current_$build" || die "$name: built, but it does not report its pinned version"
  say "$name: built in $((SECONDS - started)) s"
}

# A throwaway module that requires MODULE@VERSION, with every versioned replace of that
# module's own go.mod copied (Go ignores a dependency's replaces).
wrapper_module() {
  local dir=$1 module=$2 version=$3
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  go mod init "gha-scalesets-toolchain/$(basename "$dir")" >/dev/null 2>&1
  local gomod
  gomod=$(go mod download -json "$module@$version" | sed -n 's/^\s*"GoMod": "\(.*\)",\?$/\1/p')
  [[ -f $gomod ]] || die "the Go module proxy did not serve $module@$version"
  go mod edit -json "$gomod" | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    new = r["New"]
    if new.get("Version"):
        old = r["Old"]["Path"] + ("@" + r["Old"]["Version"] if r["Old"].get("Version") else "")
        print("-replace=" + old + "=" + new["Path"] + "@" + new["Version"])
' | xargs -r go mod edit
  go mod edit -require="$module@$version"
}

# The Pulumi SDK module at the CLI's version, unpacked in the module cache (its Python scripts).
sdk_dir() {
  local dir
  dir=$(go mod download -json "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_CLI_VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p')
  [[ -d $dir ]] || die "the Go module proxy did not serve github.com/pulumi/pulumi/sdk/v3@v$PULUMI_CLI_VERSION"
  printf '%s' "$dir"
}

# --- Pulumi CLI ----------------------------------------------------------------------------------
is_current_pulumi() {
  [[ -x $bin/pulumi ]] && [[ $("$bin/pulumi" version 2>/dev/null) == "v$PULUMI_CLI_VERSION" ]]
}
build_pulumi() {
  local on_path
  on_path=$(command -v pulumi || true)
  if [[ -n $on_path && $on_path != "$bin/pulumi" && $("$on_path" version 2>/dev/null) == "v$PULUMI_CLI_VERSION" ]]; then
    say "pulumi: using $on_path (the pinned version)"
    ln -sf "$on_path" "$bin/pulumi"
    return
  fi
  need_go "the Pulumi CLI"
  local v=v$PULUMI_CLI_VERSION
  (
    wrapper_module "$src/pulumi" github.com/pulumi/pulumi/pkg/v3 "$v"
    go mod edit -require="github.com/pulumi/pulumi/sdk/v3@$v"
    go build -trimpath -o "$bin/pulumi" \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$v" \
      github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
  )
}

# --- the Python language host --------------------------------------------------------------------
# `pulumi preview`/`up` on a project directory run the program through `pulumi-language-python`.
# Its Go module is not served by the proxy, so its source sits outside the project, in
# $PULUMI_LANGUAGE_PYTHON_SRC (default: shared/toolchain/pulumi-language-python beside this
# repository; its README says why); it builds against the CLI's packages (about 10 s once the CLI
# is built). It runs programs through `pulumi-language-python-exec`, from sdk/v3's python/cmd/.
language_host_src=${PULUMI_LANGUAGE_PYTHON_SRC:-$here/../../shared/toolchain/pulumi-language-python}
is_current_language_host() {
  [[ -x $bin/pulumi-language-python && -x $bin/pulumi-language-python-exec ]] &&
    [[ $("$bin/pulumi-language-python" -version 2>/dev/null) == "v$PULUMI_LANGUAGE_PYTHON_VERSION" ]]
}
build_language_host() {
  need_go "the Python language host"
  [[ -f $language_host_src/main.go ]] ||
    die "the Python language host's source is not at $language_host_src (set PULUMI_LANGUAGE_PYTHON_SRC to the directory holding its main.go)"
  local v=v$PULUMI_LANGUAGE_PYTHON_VERSION
  (
    wrapper_module "$src/pulumi-language-python" github.com/pulumi/pulumi/pkg/v3 "$v"
    go mod edit -require="github.com/pulumi/pulumi/sdk/v3@$v"
    cp "$language_host_src/main.go" .
    go mod tidy >/dev/null 2>&1
    go build -trimpath -o "$bin/pulumi-language-python" \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$v" .
    install -m 755 "$(sdk_dir)/python/cmd/pulumi-language-python-exec" "$bin/pulumi-language-python-exec"
  )
}

# --- the dynamic-provider plugin -----------------------------------------------------------------
# The engine starts `pulumi-resource-pulumi-python` for dynamic resources: the SDK's own script
# (sdk/v3's python/dist/), which runs the provider host in the project's virtualenv
# (PULUMI_RUNTIME_VIRTUALENV, set from Pulumi.yaml) or else in the first python3 on PATH.
is_current_dynamic_plugin() {
  [[ -x $bin/pulumi-resource-pulumi-python ]] &&
    [[ $(cat "$bin/.pulumi-resource-pulumi-python.stamp" 2>/dev/null) == "v$PULUMI_CLI_VERSION" ]]
}
build_dynamic_plugin() {
  need_go "the dynamic-provider plugin"
  install -m 755 "$(sdk_dir)/python/dist/pulumi-resource-pulumi-python" "$bin/pulumi-resource-pulumi-python"
  printf 'v%s\n' "$PULUMI_CLI_VERSION" >"$bin/.pulumi-resource-pulumi-python.stamp"
}

# --- Kubernetes control plane --------------------------------------------------------------------
kube_version_of() { "$bin/$1" --version 2>/dev/null | awk '{print $2}'; }
is_current_kubernetes() {
  [[ $(kube_version_of kube-apiserver) == "v$KUBERNETES_VERSION" ]] &&
    [[ $(kube_version_of kube-controller-manager) == "v$KUBERNETES_VERSION" ]]
}
build_kubernetes() {
  need_go "Kubernetes"
  local v=v$KUBERNETES_VERSION minor=${KUBERNETES_VERSION#*.}
  minor=${minor%%.*}
  (
    wrapper_module "$src/kubernetes" k8s.io/kubernetes "$v"
    # k8s.io/kubernetes requires its staging modules at v0.0.0 => ./staging/...; each is
    # published at v0.<minor>.<patch>.
    local gomod
    gomod=$(go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/^\s*"GoMod": "\(.*\)",\?$/\1/p')
    go mod edit -json "$gomod" | python3 -c '
import json, sys
staging = "v0." + sys.argv[1].split(".", 1)[1]
for r in json.load(sys.stdin).get("Replace") or []:
    if r["New"]["Path"].startswith("./staging/"):
        print("-replace=" + r["Old"]["Path"] + "=" + r["Old"]["Path"] + "@" + staging)
' "$KUBERNETES_VERSION" | xargs -r go mod edit
    cat >tools.go <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
EOF
    go mod tidy >/dev/null
    local base=k8s.io/component-base/version
    local ldflags="-s -w -X $base.gitVersion=$v -X $base.gitMajor=1 -X $base.gitMinor=$minor -X $base.gitTreeState=clean"
    for cmd in kube-apiserver kube-controller-manager; do
      say "  $cmd ..."
      CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin/$cmd" "k8s.io/kubernetes/cmd/$cmd"
    done
  )
}

is_current_etcd() {
  # Not `| grep -q`: under pipefail, grep closing the pipe early can fail the check.
  [[ -x $bin/etcd ]] && [[ $("$bin/etcd" --version 2>/dev/null) == *"etcd Version: $ETCD_VERSION"* ]]
}
build_etcd() {
  need_go "etcd"
  (
    wrapper_module "$src/etcd" go.etcd.io/etcd/server/v3 "v$ETCD_VERSION"
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3
  )
}

# --- pulumi-resource-kubernetes ------------------------------------------------------------------
# The plugin has no version flag (the engine asks it over gRPC): a stamp records what was built.
kubernetes_plugin_stamp() { printf '%s %s\n' "$PULUMI_KUBERNETES_MODULE" "$PULUMI_KUBERNETES_VERSION"; }
is_current_kubernetes_plugin() {
  [[ -x $bin/pulumi-resource-kubernetes ]] &&
    cmp -s "$bin/.pulumi-resource-kubernetes.stamp" <(kubernetes_plugin_stamp)
}
build_kubernetes_plugin() {
  need_go "the pulumi-kubernetes plugin"
  local module=github.com/pulumi/pulumi-kubernetes/provider/v4
  (
    local dir
    dir=$(go mod download -json "$module@$PULUMI_KUBERNETES_MODULE" | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p')
    [[ -d $dir ]] || die "the Go module proxy did not serve $module@$PULUMI_KUBERNETES_MODULE"
    rm -rf "$src/pulumi-kubernetes"
    cp -r "$dir" "$src/pulumi-kubernetes"
    chmod -R u+w "$src/pulumi-kubernetes"
    cd "$src/pulumi-kubernetes"
    # Its go.mod points the SDK at ../sdk (absent from a module zip); the embedded schema files
    # are generated by its Makefile from the committed ones.
    go mod edit -replace="github.com/pulumi/pulumi-kubernetes/sdk/v4=github.com/pulumi/pulumi-kubernetes/sdk/v4@$PULUMI_KUBERNETES_SDK_MODULE"
    local cmd=cmd/pulumi-resource-kubernetes
    cp "$cmd/schema.json" "$cmd/schema-embed.json"
    cp "$cmd/terraform-mapping.json" "$cmd/terraform-mapping-embed.json"
    go build -trimpath -o "$bin/pulumi-resource-kubernetes" \
      -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$PULUMI_KUBERNETES_VERSION" \
      "./$cmd"
  )
  kubernetes_plugin_stamp >"$bin/.pulumi-resource-kubernetes.stamp"
}

# --- promtool ------------------------------------------------------------------------------------
is_current_promtool() { [[ -x $bin/promtool ]] && "$bin/promtool" --version >/dev/null 2>&1; }
build_promtool() {
  local found
  found=$(command -v promtool || true)
  if [[ -z $found ]]; then
    command -v apt-get >/dev/null 2>&1 ||
      die "promtool: not on PATH and no apt-get to install Debian's 'prometheus' package; install Prometheus's promtool and run 'make toolchain' again."
    say "  apt-get install prometheus (for promtool) ..."
    local sudo=""
    [[ $(id -u) == 0 ]] || sudo=sudo
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    found=$(command -v promtool) || die "promtool: the 'prometheus' package did not provide it"
  fi
  ln -sf "$found" "$bin/promtool"
}

# --- actionlint ----------------------------------------------------------------------------------
# `make lint` checks .github/workflows with it; a pinned actionlint already on PATH is used as is.
actionlint_version_of() { "$1" -version 2>/dev/null | head -n 1; }
is_current_actionlint() {
  [[ -x $bin/actionlint ]] && [[ $(actionlint_version_of "$bin/actionlint") == "v$ACTIONLINT_VERSION" ]]
}
build_actionlint() {
  local on_path
  on_path=$(command -v actionlint || true)
  if [[ -n $on_path && $on_path != "$bin/actionlint" && $(actionlint_version_of "$on_path") == "v$ACTIONLINT_VERSION" ]]; then
    say "actionlint: using $on_path (the pinned version)"
    ln -sf "$on_path" "$bin/actionlint"
    return
  fi
  need_go "actionlint"
  (
    wrapper_module "$src/actionlint" github.com/rhysd/actionlint "v$ACTIONLINT_VERSION"
    CGO_ENABLED=0 go build -trimpath -o "$bin/actionlint" \
      -ldflags "-s -w -X github.com/rhysd/actionlint.version=v$ACTIONLINT_VERSION" \
      github.com/rhysd/actionlint/cmd/actionlint
  )
}

components=("$@")
((${#components[@]})) || components=(pulumi language_host dynamic_plugin etcd kubernetes kubernetes_plugin promtool actionlint)
total=$SECONDS
for c in "${components[@]}"; do
  declare -F "build_$c" >/dev/null || die "unknown component '$c'"
  step "${c//_/-}" "$c"
done
say "ready in $((SECONDS - total)) s: $bin"
