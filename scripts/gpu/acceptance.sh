#!/usr/bin/env bash
# GPU acceptance for repo-builder's serve and validate (see README.md here).
#
#   scripts/gpu/acceptance.sh build OUT      on the development machine (TensorFlow): build spec.yaml into OUT/repo
#   scripts/gpu/acceptance.sh run OUT WHEELS on the GPU host (no network): a venv from the wheels in WHEELS,
#                                            then `serve OUT/repo --validate` over HTTP and gRPC, and a check
#                                            that every model instance computed on the GPU
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
what="${1:?usage: acceptance.sh build OUT | run OUT WHEELS}"
out="$(mkdir -p "${2:?OUT}" && cd "$2" && pwd)"

case "$what" in
build)
  cp "$here/spec.yaml" "$out/spec.yaml"
  cp "$root/examples/models.py" "$out/models.py"
  python3 -m repo_builder build "$out/spec.yaml" -o "$out/repo"
  ;;
run)
  wheels="$(cd "${3:?WHEELS}" && pwd)"
  venv="$out/venv"
  # numpy 1 in the venv's own site-packages (the 2.51 python backend breaks under numpy 2); the host's
  # packages (CUDA and cuDNN libraries from its nvidia-* wheels, typer, rich ...) appended after it
  python3 -m venv --without-pip "$venv"  # pip is the host's (a system Python may lack ensurepip)
  host_site="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  venv_site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$venv_site" "$wheels"/*.whl
  echo "$host_site" > "$venv_site/zz_host_site.pth"
  "$venv/bin/python" -c 'import numpy, onnxruntime as ort; print("numpy", numpy.__version__, "onnxruntime", ort.__version__, ort.get_available_providers())'
  nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader || echo "no nvidia-smi: no GPU here"
  cd "$root"
  log="$out/tritonserver.log"
  status=0
  PYTHONPATH="$root" "$venv/bin/python" -m repo_builder serve "$out/repo" --validate --log-file "$log" \
    --report "$out/report.json" || status=$?
  echo "== where each instance computes (the models' own load lines in the server log)"
  grep -o "[a-z_]* ([a-z_0-9]*): [a-z ]*computes on [^\"]*" "$log" | sort -u || true
  on_cpu="$(grep -c "computes on CPU" "$log" || true)"
  on_gpu="$(grep -c "computes on GPU" "$log" || true)"
  echo "instances on the GPU: $on_gpu, on the CPU: $on_cpu"
  if [ "$status" -ne 0 ] || [ "$on_gpu" -eq 0 ] || [ "$on_cpu" -ne 0 ]; then
    echo "GPU acceptance FAILED (validate exit $status)" >&2
    exit 1
  fi
  echo "GPU acceptance passed"
  ;;
*)
  echo "usage: acceptance.sh build OUT | run OUT WHEELS" >&2
  exit 2
  ;;
esac
