#!/usr/bin/env bash
# The GPU checks of the issues, as one script for a lent GPU machine (see README "GPU"), ≤ 12 minutes.
# Run from the repository root with the fastai/smp wheels in .whl (../shared/tools/device-wheels.sh) and,
# for the CCP part, a copy of Clothing Co-Parsing in work/ccp_data (photos/, annotations/pixel-level/, label_list.mat).
# `bench/gpu_check.sh --device cpu` runs the same sections on a CPU (small sizes: a check that the script works,
# not a measurement). Prints short tables; writes logs and JSON under ${OUT:-bench/out}.
set -uo pipefail
DEVICE=cuda
[ "${1:-}" = "--device" ] && DEVICE=${2:?--device cuda|cpu}
OUT=${OUT:-bench/out}; mkdir -p "$OUT"
if [ "$DEVICE" = cuda ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  PY=python3
  QUICK=
else
  export PYTHONPATH=$PWD
  PY=${PYTHON:-.venv/bin/python}
  QUICK=--quick
fi
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
$PY -c "import torch, fastai, segmentation_models_pytorch as smp; print('torch', torch.__version__, 'fastai', fastai.__version__, 'smp', smp.__version__, 'cuda', torch.cuda.is_available())"

echo "== 1. CUDA unit checks (boxes, fp16 loss, confusion matrix on the device, Adam's multi-tensor kernels)"
timeout 120 $PY -m pytest -q -p no:cacheprovider -rs --tb=short -W ignore tests/test_metrics.py tests/test_boxes.py \
  tests/test_losses.py tests/test_optim.py tests/test_callbacks.py tests/test_augment.py > "$OUT/pytest_cuda.log" 2>&1
grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/pytest_cuda.log" | tail -5
grep -q failed "$OUT/pytest_cuda.log" && grep -E "^E |^tests/.*Error|^>" "$OUT/pytest_cuda.log" | head -30

echo "== 2. training throughput: clothparse (fastai, fp16) vs bare AMP loop, unet and extended_unet, batch 16 and 64"
timeout 130 $PY bench/run.py $QUICK --only gpu_train --device $DEVICE --json "$OUT/gpu_train.json" 2>&1 | grep -v Warning

echo "== 3. the speed levers one by one and together (bare loop, extended_unet)"
timeout 150 $PY bench/run.py $QUICK --only gpu_levers --device $DEVICE --json "$OUT/gpu_levers.json" 2>&1 | grep -v Warning

echo "== 4. whole epochs with each side's own loader and augmentation"
timeout 90 $PY bench/run.py $QUICK --only train_epoch --device $DEVICE --json "$OUT/train_epoch.json" 2>&1 | grep -v Warning

echo "== 5. inference and parse throughput"
timeout 120 $PY bench/run.py $QUICK --only inference --device $DEVICE --json "$OUT/inference.json" 2>&1 | grep -v Warning

if [ -f clothparse/distributed.py ]; then
  echo "== 6. data-parallel training through torchrun (nccl on a GPU, gloo on a CPU), one process"
  timeout 150 $PY -m torch.distributed.run --standalone --nproc_per_node 1 -m clothparse.cli train --profile smoke \
    --model unet --device $DEVICE --force > "$OUT/ddp.log" 2>&1
  echo "rc $? — $(tail -1 "$OUT/ddp.log")"
fi

if [ "$DEVICE" = cuda ] && [ -d work/ccp_data/photos ]; then
  echo "== 7. real photos: CCP at 288x192, unet and extended_unet, random encoder, fp16"
  export CLOTHPARSE_CCP_ROOT=$PWD/work/ccp_data
  # the ccp profile is sized for a CPU; this check keeps its GPU setting
  GPU_CCP="--set size=[288,192] --set encoder_name=resnet34 --set encoder_weights=null --set train.batch_size=16
    --set train.epochs_frozen=0 --set train.epochs_unfrozen=30"
  timeout 100 $PY -m clothparse.cli data --profile ccp $GPU_CCP 2>&1 | grep -v -i warn | tail -2
  for m in unet extended_unet; do
    timeout 120 $PY -m clothparse.cli train --profile ccp $GPU_CCP --model $m --device $DEVICE > "$OUT/train_$m.log" 2>&1
    run=$(tail -1 "$OUT/train_$m.log"); echo "$m -> $run"
    [ -d "$run" ] && timeout 40 $PY -m clothparse.cli evaluate "$run" > /dev/null 2>&1
    [ -d "$run" ] && mkdir -p "$OUT/$m" && cp "$run"/*.json "$run"/history.csv "$OUT/$m/" \
      && cp "$run"/evaluation/test/metrics.json "$OUT/$m/test_metrics.json" && $PY - "$run" <<'PY'
import json, sys, pandas as pd
run = sys.argv[1]
m = json.load(open(f"{run}/evaluation/test/metrics.json"))
h = pd.read_csv(f"{run}/history.csv")
v = m["variants"]
print(f"  epochs {len(h)}, {h['seconds'].sum():.0f} s training; test: pooled IoU excl. bg {v['plain']['pooled_excl_bg']:.2f}, "
      f"overall {v['plain']['pooled_overall']:.2f}, mask {v['plain']['mask']:.2f}, mIoU excl. bg {v['plain']['mean_excl_bg']:.2f}; "
      f"with GT injection {v['gt']['pooled_excl_bg']:.2f}, hard {v['gt_hard']['pooled_excl_bg']:.2f}")
PY
  done
fi
