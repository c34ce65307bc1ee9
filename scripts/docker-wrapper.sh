#!/usr/bin/env bash
# Docker client wrapper for wrangler/miniflare on machines with Debian's docker.io and no registry
# (WRANGLER_DOCKER_BIN points here):
#  - `build`: drops BuildKit-only flags (--load, --provenance, --sbom) that the legacy builder rejects;
#  - `pull`: succeeds without the network when the image is already present locally.
# Everything else is passed through unchanged.
set -euo pipefail

if [ -n "${AFP_REAL_DOCKER:-}" ]; then
  REAL="$AFP_REAL_DOCKER"
elif [ -x /usr/bin/docker ]; then
  REAL=/usr/bin/docker # Debian's client, the same version as its engine
else
  REAL="$(command -v docker)"
fi
export DOCKER_BUILDKIT=0

case "${1:-}" in
build)
  shift
  args=()
  skip_next=0
  for arg in "$@"; do
    if [ "$skip_next" = 1 ]; then skip_next=0; continue; fi
    case "$arg" in
    --load) ;;
    --provenance=* | --sbom=*) ;;
    --provenance | --sbom) skip_next=1 ;;
    *) args+=("$arg") ;;
    esac
  done
  exec "$REAL" build "${args[@]}"
  ;;
pull)
  shift
  image=""
  for arg in "$@"; do
    case "$arg" in -*) ;; *) image="$arg" ;; esac
  done
  if [ -n "$image" ] && "$REAL" image inspect "$image" >/dev/null 2>&1; then
    echo "Image is up to date for $image (local)"
    exit 0
  fi
  exec "$REAL" pull "$@"
  ;;
*)
  exec "$REAL" "$@"
  ;;
esac
