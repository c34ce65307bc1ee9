#!/usr/bin/env bash
# Prepares the local container engine for `wrangler dev` with real containers, offline:
#   1. a Docker engine that answers (installs Debian's docker.io when missing and running as root),
#      started with a bridge gateway so workerd can reach containers;
#   2. offline base images built from Debian packages and the npm Node 22 binary, tagged under the
#      public names the Dockerfiles in containers/ use (only where no such image exists locally);
#   3. the project's network-sidecar stand-in image (MINIFLARE_CONTAINER_EGRESS_IMAGE).
# Every step checks first and does nothing when its result is already there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${AFP_STATE_DIR:-$ROOT/.state}"
BASE_IMAGE="afp-base:bookworm"
EGRESS_IMAGE="afp-egress-proxy:local"
# Public names used by containers/*/Dockerfile; locally they resolve to the offline base image.
PUBLIC_ALIASES=("node:22-bookworm-slim" "python:3.11-slim-bookworm")
DOCKER="$ROOT/scripts/docker-wrapper.sh"
NODE_BIN="$ROOT/node_modules/node/bin/node"

log() { printf '[local-engine] %s\n' "$*" >&2; }

have_engine() { "$DOCKER" info >/dev/null 2>&1; }

ensure_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing: ${missing[*]}. Install them as root, e.g.: sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
  log "installing ${missing[*]} from Debian's packages"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_engine() {
  if have_engine; then return 0; fi
  if [ "$(id -u)" -ne 0 ]; then
    log "no Docker engine answers. Start one (its default bridge must have a gateway), e.g.:"
    log "  sudo dockerd --bip 172.18.0.1/16 &"
    exit 1
  fi
  mkdir -p "$STATE_DIR"
  log "starting dockerd (log: $STATE_DIR/dockerd.log)"
  # --bip gives the default bridge a gateway; without it workerd fails with
  # "DNS lookup failed; params.host = ''" when it starts a container.
  nohup dockerd --bip 172.18.0.1/16 >"$STATE_DIR/dockerd.log" 2>&1 &
  for _ in $(seq 1 120); do
    if have_engine; then return 0; fi
    sleep 0.5
  done
  log "dockerd did not answer within 60 s; see $STATE_DIR/dockerd.log"
  exit 1
}

debian_mirror() {
  # The machine's own apt source, so no host name is written into the repository.
  local uri
  uri="$(grep -rhoE '^URIs: *[^ ]+' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1 | sed 's/^URIs: *//' || true)"
  if [ -z "$uri" ]; then
    uri="$(grep -hoE '^deb +(\[[^]]*\] +)?[a-z]+://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | grep -v security | head -1 | awk '{print $NF}' || true)"
  fi
  [ -n "$uri" ] || { log "cannot find a Debian mirror in /etc/apt/sources*"; exit 1; }
  printf '%s' "$uri"
}

image_label() { "$DOCKER" image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true; }

ensure_base_image() {
  local node_version
  node_version="$("$NODE_BIN" --version)"
  if [ "$(image_label "$BASE_IMAGE" afp.node-version)" = "$node_version" ]; then
    log "base image $BASE_IMAGE is up to date (node $node_version)"
  else
    local rootfs="$STATE_DIR/rootfs"
    rm -rf "$rootfs" && mkdir -p "$rootfs"
    log "building $BASE_IMAGE with debootstrap (about a minute)"
    debootstrap --variant=minbase --include=python3,ca-certificates bookworm "$rootfs" "$(debian_mirror)" \
      >"$STATE_DIR/debootstrap.log" 2>&1 || { log "debootstrap failed; see $STATE_DIR/debootstrap.log"; exit 1; }
    install -m 0755 "$NODE_BIN" "$rootfs/usr/local/bin/node"
    rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
    tar -C "$rootfs" -c . | "$DOCKER" import \
      --change "LABEL afp.node-version=$node_version" \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
  fi
  for alias in "${PUBLIC_ALIASES[@]}"; do
    local current
    current="$(image_label "$alias" afp.node-version)"
    if ! "$DOCKER" image inspect "$alias" >/dev/null 2>&1 || [ -n "$current" ]; then
      # Only (re)tag names that are absent or already ours: a real upstream image is left alone.
      "$DOCKER" tag "$BASE_IMAGE" "$alias"
    fi
  done
}

ensure_egress_image() {
  local src="$ROOT/containers/egress-proxy" hash
  hash="$(cat "$src"/* | sha256sum | cut -c1-16)"
  if [ "$(image_label "$EGRESS_IMAGE" afp.source-hash)" = "$hash" ]; then
    log "egress image $EGRESS_IMAGE is up to date"
    return 0
  fi
  log "building $EGRESS_IMAGE"
  "$DOCKER" build -q --label "afp.source-hash=$hash" -t "$EGRESS_IMAGE" "$src" >/dev/null
}

main() {
  mkdir -p "$STATE_DIR"
  [ -x "$NODE_BIN" ] || { log "run npm install first ($NODE_BIN is missing)"; exit 1; }
  ensure_packages
  ensure_engine
  ensure_base_image
  ensure_egress_image
  log "ready"
}

main "$@"
