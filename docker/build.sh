#!/usr/bin/env bash
# Build dcflow's image (one image for every stage) and print the tag it built on the last line.
#
#   docker/build.sh                      # CPU variant: ghcr.io/dcflow/dcflow:<version>
#   docker/build.sh --variant cuda       # CUDA variant: ghcr.io/dcflow/dcflow:<version>-cuda
#   docker/build.sh --offline-base       # base image from the Debian archive (no registry needed)
#
# Idempotent: a repeat with the same inputs reuses every cached layer. When no registry answers
# (air-gapped), the base is built from the Debian archive with debootstrap (needs root) and
# imported as dcflow-base:bookworm. Secrets (a CA bundle, a pip configuration) are passed as build
# secrets and never land in a layer. See docs/deploy.md.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/pyproject.toml" | head -1)"

usage() {
  cat <<EOF
usage: docker/build.sh [options]

  --variant cpu|cuda     torch build to install (default cpu); the tag gets -cuda for cuda
  --tag TAG              image tag (default ghcr.io/dcflow/dcflow:${version}[-cuda])
  --base IMAGE           base image (default python:3.11-slim-bookworm, or the offline base
                         when that cannot be pulled)
  --offline-base         build the base from the Debian archive (debootstrap; needs root)
  --debian-mirror URL    Debian mirror for --offline-base (default http://deb.debian.org/debian)
  --index-url URL        package index (default \$PIP_INDEX_URL or PyPI)
  --torch-index URL|none torch wheel index (default download.pytorch.org/whl/cpu or /cu128;
                         'none', or an unreachable index, takes PyPI's torch: a CUDA build, ~7 GB)
  --extras LIST          dcflow extras (default server; server,s3server adds the S3 stand-in)
  --ca-bundle FILE       CA bundle pip must trust (default \$PIP_CERT, \$REQUESTS_CA_BUNDLE or
                         \$SSL_CERT_FILE when set); passed as a build secret
  --pip-conf FILE        pip configuration file (default \$PIP_CONFIG_FILE when set); build secret
  --network MODE         build network (default host: works when dockerd runs without a bridge)
  -h, --help             this help
EOF
}

variant=cpu tag="" base="" offline=0 mirror="http://deb.debian.org/debian"
index="${PIP_INDEX_URL:-https://pypi.org/simple}" torch_index="" extras=server
ca="${PIP_CERT:-${REQUESTS_CA_BUNDLE:-${SSL_CERT_FILE:-}}}" pipconf="${PIP_CONFIG_FILE:-}"
network=host
while [ $# -gt 0 ]; do
  case "$1" in
    --variant) variant="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --base) base="$2"; shift 2 ;;
    --offline-base) offline=1; shift ;;
    --debian-mirror) mirror="$2"; shift 2 ;;
    --index-url) index="$2"; shift 2 ;;
    --torch-index) torch_index="$2"; shift 2 ;;
    --extras) extras="$2"; shift 2 ;;
    --ca-bundle) ca="$2"; shift 2 ;;
    --pip-conf) pipconf="$2"; shift 2 ;;
    --network) network="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build.sh: error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

fail() { echo "build.sh: error: $*" >&2; exit 1; }
say() { echo "build.sh: $*" >&2; }

case "$variant" in
  cpu) tag="${tag:-ghcr.io/dcflow/dcflow:$version}"; default_torch=https://download.pytorch.org/whl/cpu ;;
  cuda) tag="${tag:-ghcr.io/dcflow/dcflow:$version-cuda}"; default_torch=https://download.pytorch.org/whl/cu128 ;;
  *) fail "--variant must be cpu or cuda, got '$variant'" ;;
esac
[ -z "$ca" ] || [ -f "$ca" ] || fail "CA bundle not found: $ca"
[ -z "$pipconf" ] || [ -f "$pipconf" ] || fail "pip configuration not found: $pipconf"
command -v docker >/dev/null || fail "no docker client on PATH"
docker info >/dev/null 2>&1 || fail "the Docker daemon does not answer (start dockerd)"

# A BuildKit client (secrets need BuildKit): buildx when present, else a 20.x CLI's built-in one.
build_cmd=()
if docker buildx version >/dev/null 2>&1; then
  build_cmd=(docker buildx build --load)
else
  for cli in docker /usr/bin/docker; do
    major="$("$cli" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1 || true)"
    if [ -n "$major" ] && [ "$major" -lt 23 ] 2>/dev/null; then
      build_cmd=(env DOCKER_BUILDKIT=1 "$cli" build); break
    fi
  done
fi
[ ${#build_cmd[@]} -gt 0 ] || fail "no BuildKit-capable docker client (install docker-buildx)"

offline_base() {
  local name=dcflow-base:bookworm
  if docker image inspect "$name" >/dev/null 2>&1; then echo "$name"; return; fi
  command -v debootstrap >/dev/null || fail "--offline-base needs debootstrap (apt-get install debootstrap)"
  [ "$(id -u)" = 0 ] || fail "--offline-base needs root (debootstrap)"
  local dir; dir="$(mktemp -d)"
  say "building the offline base $name from $mirror (about 1 minute)"
  debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
    bookworm "$dir/root" "$mirror" >&2 || { rm -rf "$dir"; fail "debootstrap failed"; }
  tar -C "$dir/root" -c . | docker import - "$name" >/dev/null \
    || { rm -rf "$dir"; fail "docker import failed"; }
  rm -rf "$dir"
  echo "$name"
}

if [ "$offline" = 1 ]; then
  base="$(offline_base)"
elif [ -z "$base" ]; then
  base=python:3.11-slim-bookworm
  if ! docker image inspect "$base" >/dev/null 2>&1 && ! docker pull -q "$base" >/dev/null 2>&1; then
    say "$base cannot be pulled (no registry answers): using the offline base"
    base="$(offline_base)"
  fi
fi

if [ -z "$torch_index" ]; then
  torch_index="$default_torch"
  curl_ca=(); [ -n "$ca" ] && curl_ca=(--cacert "$ca")
  if ! curl -fsS -m 10 "${curl_ca[@]}" -o /dev/null "$torch_index/torch/" 2>/dev/null; then
    say "$torch_index does not answer: taking PyPI's torch (a CUDA build; the image is ~7 GB)"
    torch_index=none
  fi
fi
[ "$torch_index" = none ] && torch_index=""

secrets=()
[ -n "$ca" ] && secrets+=(--secret "id=ca_bundle,src=$ca")
[ -n "$pipconf" ] && secrets+=(--secret "id=pip_conf,src=$pipconf")

say "building $tag ($variant) on $base"
"${build_cmd[@]}" --network "$network" -f "$here/Dockerfile" -t "$tag" \
  --build-arg "BASE_IMAGE=$base" --build-arg "VARIANT=$variant" \
  --build-arg "TORCH_INDEX=$torch_index" --build-arg "PIP_INDEX_URL=$index" \
  --build-arg "EXTRAS=$extras" "${secrets[@]}" "$root" >&2 || fail "docker build failed"
echo "$tag"
