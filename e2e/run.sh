#!/usr/bin/env bash
# dcflow end to end on a laptop: kind + Kubeflow Pipelines standalone + docker compose (MinIO,
# Postgres, MLflow) + the dcflow image + the Helm chart; compiles and submits ASPC-DA on digits
# with --gpus 0, waits, and asserts: the chart's hook Job merged the pipeline root into KFP's
# kfp-launcher ConfigMap, the run succeeded, MLflow holds the parent run with acc/nmi/ari, and the
# artifacts are in MinIO. Prints "E2E OK" at the end.
#
# Needs: docker (with a running engine), kind, kubectl, helm, and a checkout with its venv
# (python3 -m venv .venv && .venv/bin/pip install -e ".[test]"). About 15-25 minutes.
#   bash e2e/run.sh            # KEEP=1 keeps the cluster and compose stack afterwards
set -euo pipefail

log() { printf '\n[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# wait_for_url URL SECONDS WHAT: poll URL (curl -f) every $WAIT_INTERVAL seconds (default 2) until
# it answers; after SECONDS without an answer, one line on stderr and a non-zero status.
wait_for_url() {
  local url=$1 timeout=$2 what=$3 start=$SECONDS
  until curl -fsS --max-time 5 "$url" >/dev/null 2>&1; do
    if ((SECONDS - start > timeout)); then  # whole seconds: > waits at least the timeout
      echo "e2e: $what did not answer at $url within ${timeout}s" >&2
      return 1
    fi
    sleep "${WAIT_INTERVAL:-2}"
  done
}

# sourced (tests/deploy/test_e2e_wait.py): define the functions above and run nothing
if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then return 0; fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."

KFP_VERSION="${KFP_VERSION:-2.5.0}"      # pinned Kubeflow Pipelines standalone release
CLUSTER="${CLUSTER:-dcflow-e2e}"
NAMESPACE=kubeflow
IMAGE="${IMAGE:-dcflow:e2e}"
KFP_PORT="${KFP_PORT:-8888}"
PY="${PY:-.venv/bin/python}"
ENV_FILE="$(mktemp -d)/dcflow-e2e.env"
COMPOSE=(docker compose -p dcflow-e2e -f docker/compose.yaml -f e2e/compose.kind.yaml
         --env-file "$ENV_FILE")
FORWARD_PID=""

cleanup() {
  local rc=$?
  [[ -n "$FORWARD_PID" ]] && kill "$FORWARD_PID" 2>/dev/null || true
  if [[ "${KEEP:-0}" != 1 ]]; then
    log "cleaning up (KEEP=1 keeps everything)"
    "${COMPOSE[@]}" down -v >/dev/null 2>&1 || true
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  fi
  rm -f "$ENV_FILE"
  exit "$rc"
}
trap cleanup EXIT

for tool in docker kind kubectl helm curl; do
  command -v "$tool" >/dev/null || { echo "e2e: $tool is not installed" >&2; exit 2; }
done
docker info >/dev/null 2>&1 || { echo "e2e: the docker engine is not running" >&2; exit 2; }
[[ -x "$PY" ]] || { echo "e2e: $PY missing: create the venv first" >&2; exit 2; }

log "credentials for this run (random, in $ENV_FILE)"
MINIO_USER="dcflow"
MINIO_PASSWORD="$(openssl rand -hex 16)"
sed -e "s/^MINIO_ROOT_PASSWORD=.*/MINIO_ROOT_PASSWORD=$MINIO_PASSWORD/" \
    -e "s/^POSTGRES_PASSWORD=.*/POSTGRES_PASSWORD=$(openssl rand -hex 16)/" \
    -e "s/^MINIO_ROOT_USER=.*/MINIO_ROOT_USER=$MINIO_USER/" \
    -e "s|^DCFLOW_IMAGE=.*|DCFLOW_IMAGE=$IMAGE|" docker/.env.example >"$ENV_FILE"

log "kind cluster $CLUSTER"
kind get clusters | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --config e2e/kind.yaml
kubectl config use-context "kind-$CLUSTER"

log "Kubeflow Pipelines $KFP_VERSION (standalone)"
kubectl apply -k "github.com/kubeflow/pipelines/manifests/kustomize/cluster-scoped-resources?ref=$KFP_VERSION"
kubectl wait --for condition=established --timeout=120s crd/applications.app.k8s.io
kubectl apply -k "github.com/kubeflow/pipelines/manifests/kustomize/env/platform-agnostic?ref=$KFP_VERSION"

log "image $IMAGE (CPU variant)"
docker/build.sh --tag "$IMAGE" >/dev/null
kind load docker-image "$IMAGE" --name "$CLUSTER"

log "compose: MinIO, Postgres, MLflow (also on the kind network)"
"${COMPOSE[@]}" up -d --wait

log "waiting for Kubeflow Pipelines to be ready"
kubectl -n "$NAMESPACE" wait --for=condition=Available deployment --all --timeout=1200s

log "chart: S3 and MLflow from compose, pipelines uploaded by the chart's Job"
kubectl -n "$NAMESPACE" create secret generic dcflow-e2e-s3 \
  --from-literal=AWS_ACCESS_KEY_ID="$MINIO_USER" \
  --from-literal=AWS_SECRET_ACCESS_KEY="$MINIO_PASSWORD" \
  --dry-run=client -o yaml | kubectl apply -f -
helm upgrade --install dcflow charts/dcflow -n "$NAMESPACE" --wait --timeout 15m \
  --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" \
  --set image.pullPolicy=Never \
  --set minio.enabled=false --set mlflow.enabled=false \
  --set s3.endpoint=http://dcflow-minio:9000 --set s3.existingSecret=dcflow-e2e-s3 \
  --set mlflow.trackingUri=http://dcflow-mlflow:5000 \
  --set kfpLauncher.enabled=true --set upload.gpus=0 \
  --set upload.kfpHost="http://ml-pipeline.$NAMESPACE.svc.cluster.local:8888"
# KFP's own kfp-launcher ConfigMap, with the pipeline root merged in by the chart's hook Job
ROOT_NOW="$(kubectl -n "$NAMESPACE" get configmap kfp-launcher -o jsonpath='{.data.defaultPipelineRoot}')"
[[ "$ROOT_NOW" == s3://dcflow/runs ]] || {
  echo "e2e: kfp-launcher defaultPipelineRoot is '$ROOT_NOW', not s3://dcflow/runs" >&2; exit 1; }

log "KFP API on 127.0.0.1:$KFP_PORT"
kubectl -n "$NAMESPACE" port-forward svc/ml-pipeline "$KFP_PORT:8888" >/dev/null 2>&1 &
FORWARD_PID=$!
wait_for_url "http://127.0.0.1:$KFP_PORT/apis/v2beta1/healthz" 120 "the KFP API (port-forward)"

log "compile and submit ASPC-DA on digits (--gpus 0)"
RUN_NAME="e2e-$(date +%Y%m%d-%H%M%S)"
"$PY" pipelines/compile.py --method aspc-da --out "$(dirname "$ENV_FILE")/compiled" \
  --image "$IMAGE" --gpus 0 --cpu 250m --memory 512Mi --train-cpu 500m --train-memory 1Gi \
  --config-map dcflow-config --s3-secret dcflow-e2e-s3 --pipeline-root s3://dcflow/runs \
  --submit --host "http://127.0.0.1:$KFP_PORT" --experiment dcflow-e2e --run-name "$RUN_NAME" \
  | tee "$(dirname "$ENV_FILE")/submit.log"
RUN_ID="$(sed -n 's/.*: run \([^ ]*\) (experiment.*/\1/p' "$(dirname "$ENV_FILE")/submit.log")"
[[ -n "$RUN_ID" ]] || { echo "e2e: no run id in the submit output" >&2; exit 1; }

log "waiting for run $RUN_ID, then checking KFP and MLflow"
# shellcheck disable=SC1090  # the env file is made above
set -a && source "$ENV_FILE" && set +a
KFP_HOST="http://127.0.0.1:$KFP_PORT" RUN_ID="$RUN_ID" \
MLFLOW_TRACKING_URI="http://127.0.0.1:$MLFLOW_PORT" "$PY" - <<'PYEOF'
import os

import kfp
from mlflow.tracking import MlflowClient

run_id = os.environ["RUN_ID"]
run = kfp.Client(host=os.environ["KFP_HOST"]).wait_for_run_completion(run_id, timeout=2400)
assert run.state == "SUCCEEDED", f"KFP run {run_id} ended {run.state}"
print(f"KFP run {run_id}: {run.state}")

ml = MlflowClient()
exp = ml.get_experiment_by_name("dcflow")
assert exp is not None, "MLflow has no experiment 'dcflow'"
parents = ml.search_runs([exp.experiment_id], "tags.`dcflow.kind` = 'pipeline'")
parents = [r for r in parents if r.data.tags.get("pipeline_job_id")]
assert parents, "MLflow holds no dcflow parent run"
metrics = parents[0].data.metrics
assert {"acc", "nmi", "ari"} <= set(metrics), f"parent run metrics: {sorted(metrics)}"
shown = {k: round(metrics[k], 4) for k in ("acc", "nmi", "ari")}
print("MLflow parent run", parents[0].info.run_id, shown)
PYEOF

log "checking the artifacts in MinIO"
minio_ls() {  # recursive listing inside the MinIO container, with its own root credentials
  # shellcheck disable=SC2016  # expanded by the container's shell, not this one
  "${COMPOSE[@]}" exec -T minio sh -ec 'mc alias set local http://127.0.0.1:9000 \
    "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null && mc ls -r "local/$1"' sh "$1"
}
expect() {  # expect PATH SUFFIX WHAT: some object under PATH ends with SUFFIX
  local n
  n="$(minio_ls "$1" | grep -c -- "$2\$" || true)"
  [[ "$n" -gt 0 ]] || { echo "e2e: no $3 under s3://$1" >&2; exit 1; }
  echo "MinIO: $n x $2 under s3://$1 ($3)"
}
expect dcflow/runs/ /labels.npy "stage artifacts"
expect dcflow/weights/aspc-da/ /weights.pt.sha256 "weights with their sha256"
expect "$MLFLOW_BUCKET/artifacts/" /predictions.csv "MLflow artifacts"
log "E2E OK"
