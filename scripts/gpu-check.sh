#!/usr/bin/env bash
# The prepared GPU check of issue 7 (docs/cuda.md).
#
#   scripts/gpu-check.sh build   # on any machine with Go: CGO_ENABLED=0 binaries into bin/
#   scripts/gpu-check.sh         # on the GPU machine: run them, print a table
#
# The run needs no Go and no CUDA toolkit: the NVIDIA driver (libcuda.so.1)
# and the cuBLAS that comes with the machine's PyTorch (site-packages
# nvidia/*/lib) or a CUDA install. Exit status: 0 all passed, 1 a check
# failed, 2 no GPU here (nothing was checked).
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = build ]; then
  set -e
  export PATH="$PATH:/usr/local/go/bin"
  mkdir -p bin
  CGO_ENABLED=0 go build -o bin/zoo ./cmd/zoo
  for p in cuda cuda/kernels cuda/nn; do
    CGO_ENABLED=0 go test -c -o "bin/$(basename "$p").test" "./internal/$p"
  done
  CGO_ENABLED=0 go test -c -o bin/vgg.test ./zoo/vgg
  ls -l bin
  exit 0
fi

for f in bin/zoo bin/cuda.test bin/kernels.test bin/nn.test bin/vgg.test; do
  [ -x "$f" ] || { echo "gpu-check: $f missing; run scripts/gpu-check.sh build first (on any machine with Go)"; exit 1; }
done

# A Python with torch: Debian's first (pyenv's python3 may lack torch).
PY=""
for p in ${ZOO_PYTHON:-} /usr/bin/python3 python3; do
  if "$p" -c 'import torch' 2>/dev/null; then PY=$p; break; fi
done

# The CUDA libraries of that PyTorch (pip wheels: site-packages/nvidia/*/lib).
if [ -n "$PY" ]; then
  TORCH_LIBS=$("$PY" - <<'PYEOF' 2>/dev/null
import glob, os, site, torch
dirs = []
for s in site.getsitepackages() + [site.getusersitepackages(), os.path.dirname(os.path.dirname(torch.__file__))]:
    dirs += sorted(glob.glob(os.path.join(s, "nvidia", "*", "lib")))
dirs.append(os.path.join(os.path.dirname(torch.__file__), "lib"))
print(":".join(d for d in dict.fromkeys(dirs) if os.path.isdir(d)))
PYEOF
)
  export ZOO_CUDA_LIBS="${ZOO_CUDA_LIBS:+$ZOO_CUDA_LIBS:}${TORCH_LIBS}"
fi

# The driver: without it there is nothing to check.
if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1' &&
   ! (IFS=:; for d in ${ZOO_CUDA_LIBS:-} ${LD_LIBRARY_PATH:-}; do [ -e "$d/libcuda.so.1" ] && exit 0; done; exit 1); then
  echo "gpu-check: no GPU here: libcuda.so.1 (the NVIDIA driver) was not found by ldconfig, in ZOO_CUDA_LIBS or LD_LIBRARY_PATH."
  echo "gpu-check: nothing was checked; run this on a machine with an NVIDIA GPU and driver."
  exit 2
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "ZOO_CUDA_LIBS=$ZOO_CUDA_LIBS"

mkdir -p out/gpucheck
status=0
declare -a rows
export ZOO_CUDA_REQUIRED=1
for t in cuda kernels nn; do
  log="out/gpucheck/$t.log"
  ./bin/$t.test -test.v -test.count=1 >"$log" 2>&1
  rc=$?
  [ $rc -eq 0 ] || status=1
  pass=$(grep -c -- '^--- PASS' "$log"); fail=$(grep -c -- '^--- FAIL' "$log"); skip=$(grep -c -- '^--- SKIP' "$log")
  rows+=("$(printf '%-22s %-8s pass %-3s fail %-3s skip %-3s (%s)' "go test $t" "$([ $rc -eq 0 ] && echo ok || echo FAIL)" "$pass" "$fail" "$skip" "$log")")
done
grep -h 'max |gpu' out/gpucheck/nn.log > out/gpucheck/diffs.txt || true

# Whole training steps on the GPU against the CPU path (zoo/vgg's Device):
# width-1/16 vgg11/vgg11_bn (cifar and imagenet heads), then full vgg11_bn
# and vgg16_bn at batch 8; three SGD steps, losses, logits, weights and
# running statistics within 1e-4 relative.
log=out/gpucheck/vgg-steps.log
(cd zoo/vgg && ../../bin/vgg.test -test.v -test.count=1 -test.run 'TestDevice' -test.timeout 300s) >"$log" 2>&1
rc=$?
[ $rc -eq 0 ] || status=1
pass=$(grep -c -- '--- PASS' "$log"); fail=$(grep -c -- '--- FAIL' "$log"); skip=$(grep -c -- '--- SKIP' "$log")
rows+=("$(printf '%-22s %-8s pass %-3s fail %-3s skip %-3s (%s)' "vgg device steps" "$([ $rc -eq 0 ] && echo ok || echo FAIL)" "$pass" "$fail" "$skip" "$log")")

# gozoo on the GPU, TF32 on as PyTorch below: training steps, then inference.
ZOO_CUDA_TF32=1 timeout 300 ./bin/zoo bench --device cuda --mode train --batch 64,128 --iters 10 --warmup 2 vgg11_bn vgg16_bn >out/gpucheck/zoo-bench.log 2>&1
rc=$?
[ $rc -eq 0 ] || status=1
while IFS= read -r line; do rows+=("$(printf '%-22s %s' "zoo bench" "$line")"); done < <(grep -v '^bench ' out/gpucheck/zoo-bench.log | tail -n 8)
ZOO_CUDA_TF32=1 timeout 120 ./bin/zoo bench --device cuda --mode infer --batch 128 --iters 10 --warmup 2 vgg16_bn >>out/gpucheck/zoo-bench.log 2>&1 || status=1
rows+=("$(printf '%-22s %s' "zoo bench infer" "$(tail -1 out/gpucheck/zoo-bench.log)")")

if [ -n "$PY" ]; then
  for m in vgg11_bn vgg16_bn; do
    for b in 64 128; do
      r=$(timeout 300 "$PY" scripts/torch_gpu_bench.py "$m" "$b" 2>>out/gpucheck/torch.log | tail -1)
      rows+=("$(printf '%-22s %s' "torch $m b$b" "$r")")
    done
  done
else
  rows+=("torch                  no Python with torch found; set ZOO_PYTHON")
fi

echo
echo "== gpu-check summary =="
printf '%s\n' "${rows[@]}"
echo "per-op max differences: out/gpucheck/diffs.txt ($(wc -l <out/gpucheck/diffs.txt) lines)"
exit $status
