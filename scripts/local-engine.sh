#!/usr/bin/env bash
# Prepares the local container engine for `wrangler dev` with real containers, offline:
#   1. a Docker engine that answers (installs Debian's docker.io when missing and running as root),
#      started with a bridge gateway so workerd can reach containers;
#   2. offline base images built from Debian packages and the npm Node 22 binary, tagged under the
#      public names the Dockerfiles in containers/ use (only where no such image exists locally);
#   3. the project's network-sidecar stand-in image (MINIFLARE_CONTAINER_EGRESS_IMAGE);
#   4. network isolation of function containers (iptables, as root): no container-to-container
#      traffic, no link-local/metadata addresses, no host services, no published port reachable
#      from outside the host (see ensure_firewall);
#   5. the state folder, private to its owner (mode 0700).
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
# dockerd flags: --bip gives the default bridge a gateway (without it workerd fails with
# "DNS lookup failed; params.host = ''" when it starts a container); --icc=false turns off traffic
# between containers on that bridge, where workerd puts every network sidecar; --ip binds the ports
# Docker publishes (each sidecar's ingress, which workerd reaches at 127.0.0.1) to loopback only.
DOCKERD_ARGS=(--bip 172.18.0.1/16 --icc=false --ip 127.0.0.1)
# The default bridge options those flags show up as, and the values they must have.
ENGINE_ICC_OPTION="com.docker.network.bridge.enable_icc=false"
ENGINE_BINDING_OPTION="com.docker.network.bridge.host_binding_ipv4=127.0.0.1"
# Docker's network that workerd attaches every sidecar to (the function container shares its
# sidecar's network namespace, so this is the function's network too).
CONTAINER_NETWORK="bridge"
# Link-local addresses, cloud metadata services (169.254.169.254) among them.
LINK_LOCAL_CIDR="169.254.0.0/16"
# Our iptables chains: forwarded traffic of the containers' bridge (jumped to from DOCKER-USER,
# which Docker keeps across restarts) and traffic from the bridge to the host (from INPUT).
FORWARD_CHAIN="AFP-CONTAINERS"
INPUT_CHAIN="AFP-CONTAINERS-TO-HOST"
# How long to wait for a stopped dockerd to exit before starting it again, in half-seconds (30 s).
DOCKERD_STOP_WAIT_STEPS=60

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

start_engine() {
  log "starting dockerd ${DOCKERD_ARGS[*]} (log: $STATE_DIR/dockerd.log)"
  # Its own session: the engine (and its docker-proxy children) must not share the process group of
  # the command that started it, or a signal to that group (a test stopping its platform) stops it.
  setsid nohup dockerd "${DOCKERD_ARGS[@]}" >"$STATE_DIR/dockerd.log" 2>&1 &
  for _ in $(seq 1 120); do
    if have_engine; then return 0; fi
    sleep 0.5
  done
  log "dockerd did not answer within 60 s; see $STATE_DIR/dockerd.log"
  exit 1
}

# True when the default bridge has the option NAME=VALUE given as $1.
bridge_has_option() {
  local name="${1%%=*}" value="${1#*=}"
  [ "$("$DOCKER" network inspect "$CONTAINER_NETWORK" --format "{{ index .Options \"$name\" }}" 2>/dev/null)" = "$value" ]
}

# An engine that answers but was started without the isolation flags of DOCKERD_ARGS is restarted
# with them, only when that disturbs nobody: as root, not managed by systemd, with no container
# running and no other platform (workerd) alive. Otherwise the iptables rules of ensure_firewall
# still keep containers apart and published ports from outside; say so and go on.
ensure_engine_flags() {
  bridge_has_option "$ENGINE_ICC_OPTION" && bridge_has_option "$ENGINE_BINDING_OPTION" && return 0
  local reason=""
  if [ "$(id -u)" -ne 0 ]; then
    reason="not running as root"
  elif command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker 2>/dev/null; then
    reason="dockerd is managed by systemd (set \"icc\": false in /etc/docker/daemon.json)"
  elif [ -n "$("$DOCKER" ps -q)" ]; then
    reason="containers are running"
  elif pgrep -x workerd >/dev/null 2>&1; then
    reason="another platform (workerd) is running"
  elif [ ! -s /var/run/docker.pid ]; then
    reason="its pid file /var/run/docker.pid is missing"
  fi
  if [ -n "$reason" ]; then
    log "dockerd runs without ${DOCKERD_ARGS[*]} and is not restarted ($reason); the iptables rules isolate containers"
    return 0
  fi
  local pid
  pid="$(cat /var/run/docker.pid)"
  log "restarting dockerd (pid $pid) with ${DOCKERD_ARGS[*]}: inter-container traffic off, ports on loopback"
  kill "$pid"
  for _ in $(seq 1 "$DOCKERD_STOP_WAIT_STEPS"); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "dockerd (pid $pid) did not stop within 30 s"
    exit 1
  fi
  start_engine
}

ensure_engine() {
  if have_engine; then
    ensure_engine_flags
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    log "no Docker engine answers. Start one (its default bridge must have a gateway), e.g.:"
    log "  sudo dockerd ${DOCKERD_ARGS[*]} &"
    exit 1
  fi
  start_engine
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

# Replaces the rules of one of our iptables chains (created when missing) with the given rules, one
# rule specification per argument, unless it holds exactly those already.
set_chain_rules() {
  local chain="$1" rule wanted current
  shift
  iptables -w -N "$chain" 2>/dev/null || true
  wanted="$(printf -- "-N %s\n" "$chain"; for rule in "$@"; do printf -- "-A %s %s\n" "$chain" "$rule"; done)"
  current="$(iptables -w -S "$chain")"
  [ "$current" = "$wanted" ] && return 0
  log "setting the rules of iptables chain $chain"
  iptables -w -F "$chain"
  for rule in "$@"; do
    # Rules are word lists without quoting; splitting them into words is intended.
    # shellcheck disable=SC2086
    iptables -w -A "$chain" $rule
  done
}

# Makes `chain` jump to `target` first for packets matching `match` (words), unless it already does.
ensure_jump() {
  local chain="$1" match="$2" target="$3"
  # shellcheck disable=SC2086
  iptables -w -C "$chain" $match -j "$target" 2>/dev/null || iptables -w -I "$chain" 1 $match -j "$target"
}

# Network isolation of function containers, on the host's firewall (iptables; Docker's own rules
# stay untouched). The function container shares the network namespace of its sidecar, which sits
# on Docker's default bridge (CONTAINER_NETWORK, docker0), so these rules hold for the handler's code:
#  - forwarded traffic (FORWARD_CHAIN, first in DOCKER-USER, which Docker consults before its own
#    rules and keeps across restarts):
#      bridge -> bridge           rejected: no container reaches another one (as --icc=false);
#      bridge -> 169.254.0.0/16   rejected: no link-local or cloud metadata address;
#      elsewhere -> bridge, new   dropped: published ports (the sidecar ingress that leads to a
#                                 container's agent) answer only the host itself, where workerd
#                                 connects from (its connections are local, not forwarded); on an
#                                 engine started with DOCKERD_ARGS they listen on loopback anyway;
#      anything else              returns to Docker's rules (outbound internet, replies).
#  - traffic from the bridge to the host itself (INPUT_CHAIN, first in INPUT for the bridge):
#    replies to connections the host opened (workerd -> sidecar ingress) pass; DNS to a name
#    server that is one of the host's own addresses passes (Docker copies the host's resolv.conf
#    into containers); everything else is rejected: the wrangler port, dockerd, published ports
#    (through docker-proxy), any service on any host address, the bridge gateway included.
# Nothing in a container needs to open a connection to the host: workerd reaches containers
# through their published ports, from the host. Containers on this bridge get no IPv6 (Docker
# turns it off in their namespace when the network has none), so IPv4 rules suffice.
ensure_firewall() {
  if [ "$(id -u)" -ne 0 ] || ! command -v iptables >/dev/null 2>&1; then
    # Fail closed: without these rules, containers reach each other, 169.254.0.0/16 and the host.
    if [ "${AFP_ALLOW_UNISOLATED:-}" = "1" ]; then
      log "WARNING: container network isolation is NOT applied (AFP_ALLOW_UNISOLATED=1)"
      return 0
    fi
    log "container network isolation needs root and iptables: run 'sudo npm run engine' once,"
    log "or set AFP_ALLOW_UNISOLATED=1 to run without it (containers could then reach each other)"
    exit 1
  fi
  ensure_bridge_netfilter
  local bridge subnet nameserver dns_rules=()
  bridge="$("$DOCKER" network inspect "$CONTAINER_NETWORK" --format '{{ index .Options "com.docker.network.bridge.name" }}')"
  subnet="$("$DOCKER" network inspect "$CONTAINER_NETWORK" --format '{{ range .IPAM.Config }}{{ .Subnet }}{{ end }}')"
  [ -n "$bridge" ] && [ -n "$subnet" ] || { log "cannot read Docker's $CONTAINER_NETWORK network"; exit 1; }
  for nameserver in $(awk '$1 == "nameserver" { print $2 }' /etc/resolv.conf 2>/dev/null); do
    if ip -4 -o addr show 2>/dev/null | awk '{ sub("/.*", "", $4); print $4 }' | grep -qxF "$nameserver"; then
      dns_rules+=("-d $nameserver/32 -p udp -m udp --dport 53 -j RETURN" "-d $nameserver/32 -p tcp -m tcp --dport 53 -j RETURN")
    fi
  done
  set_chain_rules "$FORWARD_CHAIN" \
    "-i $bridge -o $bridge -j REJECT --reject-with icmp-port-unreachable" \
    "-s $subnet -d $LINK_LOCAL_CIDR -i $bridge -j REJECT --reject-with icmp-port-unreachable" \
    "! -i $bridge -o $bridge -m conntrack --ctstate NEW -j DROP" \
    "-j RETURN"
  set_chain_rules "$INPUT_CHAIN" \
    "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN" \
    "${dns_rules[@]}" \
    "-p tcp -j REJECT --reject-with tcp-reset" \
    "-j REJECT --reject-with icmp-port-unreachable"
  ensure_jump DOCKER-USER "" "$FORWARD_CHAIN"
  ensure_jump INPUT "-i $bridge" "$INPUT_CHAIN"
  log "container network isolation applied on $bridge ($subnet)"
}

# Bridged traffic passes iptables only with bridge netfilter on: without it, --icc=false and the
# container-to-container rule do nothing. Loads br_netfilter when needed and turns it on.
ensure_bridge_netfilter() {
  local setting=/proc/sys/net/bridge/bridge-nf-call-iptables
  [ -e "$setting" ] || modprobe br_netfilter 2>/dev/null || true
  if [ ! -e "$setting" ]; then
    log "bridge netfilter is unavailable (no br_netfilter): container-to-container traffic cannot be filtered"
    [ "${AFP_ALLOW_UNISOLATED:-}" = "1" ] && return 0
    exit 1
  fi
  [ "$(cat "$setting")" = "1" ] || echo 1 >"$setting"
}

# The state folder holds the development credentials, the master key and every stored package:
# private to its owner, also when it already existed.
ensure_state_dir() {
  mkdir -p -m 0700 "$STATE_DIR"
  chmod 0700 "$STATE_DIR"
}

main() {
  ensure_state_dir
  [ -x "$NODE_BIN" ] || { log "run npm install first ($NODE_BIN is missing)"; exit 1; }
  ensure_packages
  ensure_engine
  ensure_base_image
  ensure_egress_image
  ensure_firewall
  log "ready"
}

main "$@"
