#!/usr/bin/env bash
# Build (or reuse) the binaries of the local e2e control plane, outside the repository.
#
# Layout: ${LADTS_E2E_CACHE:-$HOME/.cache/ladts-e2e}/<component>-<version>/<binary>
#   kubernetes-<v>/{kube-apiserver,kube-scheduler}   wrapper module over k8s.io/kubernetes
#   kine-<v>/kine  kwok-<v>/kwok  helm-<v>/helm       go install from the Go module proxy
#   prometheus-<debian version>/{prometheus,promtool} unpacked from Debian's .deb
# A component whose binaries already exist is skipped. GOMODCACHE/GOCACHE stay at Go's
# defaults so that a rebuild after a version bump is warm.
#
# Usage: e2e/controlplane/build.sh [component ...]
#   default: prometheus kine kubernetes kwok (what the e2e tests and benchmarks use);
#   helm is built only when named (`build.sh helm`), for the tests that render the chart.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Pins, unless already set in the environment.
while IFS='=' read -r key value; do
  [[ -z "$key" || "$key" == \#* ]] && continue
  if [[ -z "${!key:-}" ]]; then export "$key=$value"; fi
done < "$HERE/versions.env"

CACHE="${LADTS_E2E_CACHE:-$HOME/.cache/ladts-e2e}"
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -p=${LADTS_E2E_BUILD_JOBS:-2}"
mkdir -p "$CACHE"

log() { printf '[build.sh %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# have DIR BIN...: true when every binary exists and is executable.
have() {
  local dir="$1"; shift
  local b
  for b in "$@"; do [[ -x "$dir/$b" ]] || return 1; done
}

# finish TMPDIR DEST: atomically publish a finished build directory.
finish() {
  rm -rf "$2"
  mv "$1" "$2"
}

build_kubernetes() {
  local v="$LADTS_K8S_VERSION"
  local dest="$CACHE/kubernetes-$v"
  have "$dest" kube-apiserver kube-scheduler && { log "kubernetes $v: cached"; return 0; }
  local work="$CACHE/wrappers/kubernetes-$v"   # go.mod/go.sum only; sources live in GOMODCACHE
  mkdir -p "$work"
  local gomod
  gomod="$(cd "$CACHE" && GOFLAGS= go mod download -json "k8s.io/kubernetes@$v" \
    | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -f "$gomod" ]] || { log "cannot find go.mod of k8s.io/kubernetes@$v"; return 1; }
  local goline godebug staging minor
  goline="$(grep -m1 -E '^go [0-9]' "$gomod")"
  godebug="$(grep -m1 -E '^godebug ' "$gomod" || true)"
  # Every module the release replaces with ./staging/src/... is a staging module (required at
  # the fake version v0.0.0): replace it with its published v0.X.Y tag.
  staging="$(grep -oE '^[[:space:]]*k8s\.io/[A-Za-z0-9._-]+ => \./staging/' "$gomod" \
    | awk '{print $1}' | sort -u)"
  [[ -n "$staging" ]] || { log "no staging replace lines in $gomod"; return 1; }
  local tagv="v0.${v#v1.}"
  log "kubernetes $v: $(wc -l <<<"$staging") staging modules at $tagv; $goline; ${godebug:-no godebug}"
  {
    echo "module example.invalid/ladts-controlplane"
    echo
    echo "$goline"
    [[ -n "$godebug" ]] && echo "$godebug"
    echo
    echo "require k8s.io/kubernetes $v"
    echo
    echo "replace ("
    while read -r m; do echo "	$m => $m $tagv"; done <<<"$staging"
    echo ")"
  } > "$work/go.mod"
  (cd "$work" && go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$v" \
    "k8s.io/kubernetes/cmd/kube-scheduler@$v")
  minor="${v#v1.}"; minor="${minor%%.*}"
  local ld="-s -w -X k8s.io/component-base/version.gitVersion=$v"
  ld+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  ld+=" -X k8s.io/component-base/version.gitTreeState=clean"
  ld+=" -X k8s.io/client-go/pkg/version.gitVersion=$v"
  ld+=" -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  local tmp="$dest.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  (cd "$work" && go build -trimpath -ldflags "$ld" -o "$tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-scheduler)
  cp "$work/go.mod" "$work/go.sum" "$tmp/"
  finish "$tmp" "$dest"
}

# go_install NAME VERSION PKG LDFLAGS: GOBIN install of a module without replace lines.
go_install() {
  local name="$1" v="$2" pkg="$3" ld="$4"
  local dest="$CACHE/$name-$v"
  have "$dest" "$name" && { log "$name $v: cached"; return 0; }
  local tmp="$dest.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  GOBIN="$tmp" go install -trimpath -ldflags "-s -w $ld" "$pkg@$v"
  finish "$tmp" "$dest"
}

build_kine() {
  go_install kine "$LADTS_KINE_VERSION" github.com/k3s-io/kine \
    "-X github.com/k3s-io/kine/pkg/version.Version=$LADTS_KINE_VERSION"
}

# kwok's "fast" stages (node initialize + lease heartbeat, pod ready/complete/delete), taken
# from the module's kustomize/ folder and concatenated into one --config file for the fixtures.
KWOK_STAGES=(node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease
  pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete)

build_kwok() {
  local v="$LADTS_KWOK_VERSION"
  local dest="$CACHE/kwok-$v"
  have "$dest" kwok && [[ -s "$dest/stages-fast.yaml" ]] && { log "kwok $v: cached"; return 0; }
  go_install kwok "$v" sigs.k8s.io/kwok/cmd/kwok "-X sigs.k8s.io/kwok/pkg/consts.Version=$v"
  local src s
  src="$(cd "$CACHE" && GOFLAGS= go mod download -json "sigs.k8s.io/kwok@$v" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  for s in "${KWOK_STAGES[@]}"; do
    echo "---"
    cat "$src/kustomize/stage/$s.yaml"
  done > "$dest/stages-fast.yaml.tmp"
  mv "$dest/stages-fast.yaml.tmp" "$dest/stages-fast.yaml"
}

build_helm() {
  local v="$LADTS_HELM_VERSION" major
  major="${v%%.*}"   # v3 or v4
  go_install helm "$v" "helm.sh/helm/$major/cmd/helm" \
    "-X helm.sh/helm/$major/internal/version.version=$v"
}

build_prometheus() {
  local want="$LADTS_PROMETHEUS_DEB_VERSION" ver
  # Use the pin when apt knows it, else the candidate (Debian security updates replace pins).
  if ! apt-cache show "prometheus=$want" >/dev/null 2>&1; then
    apt-get update -qq || log "apt-get update failed; trying the existing lists"
  fi
  if apt-cache show "prometheus=$want" >/dev/null 2>&1; then
    ver="$want"
  else
    ver="$(apt-cache policy prometheus | awk '/Candidate:/ {print $2}')"
    log "prometheus $want not in apt; using candidate ${ver:-none}"
  fi
  [[ -n "$ver" && "$ver" != "(none)" ]] || { log "no prometheus package in apt"; return 1; }
  local dest="$CACHE/prometheus-$ver"
  have "$dest" prometheus promtool && { log "prometheus $ver: cached"; return 0; }
  local tmp="$dest.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp/deb"
  if (cd "$tmp/deb" && apt-get download -qq "prometheus=$ver"); then
    dpkg -x "$tmp"/deb/prometheus_*.deb "$tmp/unpacked"
    cp "$tmp/unpacked/usr/bin/prometheus" "$tmp/unpacked/usr/bin/promtool" "$tmp/"
    rm -rf "$tmp/deb" "$tmp/unpacked"
  else
    log "apt-get download failed; falling back to apt-get install (system-wide)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "prometheus=$ver"
    systemctl disable --now prometheus >/dev/null 2>&1 || true
    ln -s "$(command -v prometheus)" "$tmp/prometheus"
    ln -s "$(command -v promtool)" "$tmp/promtool"
  fi
  finish "$tmp" "$dest"
}

ALL=(prometheus kine kubernetes kwok helm)
DEFAULT=(prometheus kine kubernetes kwok)
if (($#)); then COMPONENTS=("$@"); else COMPONENTS=("${DEFAULT[@]}"); fi

# The fixtures make their certificates with the openssl command.
if ! command -v openssl >/dev/null; then
  log "installing openssl (used by the e2e fixtures for certificates)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl
fi

total_start=$(date +%s)
summary=()
for c in "${COMPONENTS[@]}"; do
  declare -F "build_$c" >/dev/null || { log "unknown component: $c (known: ${ALL[*]})"; exit 2; }
  start=$(date +%s)
  log "== $c"
  "build_$c"
  secs=$(( $(date +%s) - start ))
  summary+=("$c=${secs}s")
  echo "TIME $c ${secs}s"
done
echo "TIME total $(( $(date +%s) - total_start ))s (${summary[*]}) cache=$CACHE"
