#!/usr/bin/env bash
# The GPU numbers of docs/BENCHMARKS.md, in one go, on the lent GPU machine (after `make gpu-test`):
#   bench/run_gpu_benchmarks.sh OUT_DIR [hone|peers|sketch|sketch-train|train|train-fast|finetune|all]
# hone: ceilings, hone bench of the zoo (fp32 eager and CUDA graphs), MiniLM in fp32/bf16, eager
# and CUDA graphs, and hone profile of MiniLM. peers: bench/peers/run_peers.py on MiniLM and the
# zoo (eager and torch.compile) with hone's numbers beside them. sketch: the SKLinear landscape
# (needs -DHONE_BUILD_BENCH=ON), eager and CUDA graphs, tensor-core kernels and cuBLAS. train: the
# Fashion-MNIST CNN trained for 4 epochs (real data; HONE_FASHION_MNIST_DIR) eager and with
# --cuda-graphs, and the training batch finder. train-fast: the same CNN for 4 epochs at larger
# batches (the throughput preset, batch 256) and each run's test accuracy. sketch-train: the sketch
# grid at the training shapes (fwd+bwd eager and as one graph). finetune: MiniLM fine-tuned on fine-foods-text (real
# reviews and pretrained weights; HONE_DATA_DIR, HONE_MINILM_DIR). Every result is JSON.
# bench inputs and weights are random: timings only; train and finetune are real runs.
set -uo pipefail
out=${1:?usage: bench/run_gpu_benchmarks.sh OUT_DIR [hone|peers|sketch|all]}
what=${2:-all}
hone=${HONE:-build-gpu/tools/hone/hone}
python=${PYTHON:-python3}
mkdir -p "$out"
run() {  # run NAME COMMAND...: stdout to OUT/NAME, a line per command on stderr
  local name=$1
  shift
  echo "[gpu-bench] $name: $*" >&2
  "$@" >"$out/$name" || echo "[gpu-bench] $name failed (exit $?)" >&2
}

if [[ $what == hone || $what == all ]]; then
  run info.json "$hone" info --json
  run ceilings.json "$hone" info --ceilings --device cuda --json
  for model in mlp cnn mobilenet transformer lstm attention; do
    run "bench-$model-fp32.json" "$hone" bench "$model" --device cuda --batch 1,64,256 --warmup 20 --iterations 200 --json
    run "bench-$model-fp32-graphs.json" "$hone" bench "$model" --device cuda --cuda-graphs --batch 1,64,256 \
      --warmup 20 --iterations 200 --json
  done
  for dtype in fp32 bf16; do
    run "bench-minilm-$dtype.json" "$hone" bench minilm --device cuda --dtype "$dtype" --batch 1,64,256 \
      --warmup 20 --iterations 200 --json
    run "bench-minilm-$dtype-graphs.json" "$hone" bench minilm --device cuda --dtype "$dtype" --cuda-graphs \
      --batch 1,8,64,256 --warmup 20 --iterations 200 --json
  done
  run profile-minilm-bf16-b1.json "$hone" profile minilm --device cuda --dtype bf16 --batch 1 --steps 20 \
    --trace "$out/trace-minilm-bf16-b1.json" --json
  run profile-minilm-bf16-b256.json "$hone" profile minilm --device cuda --dtype bf16 --batch 256 --steps 10 --json
  run find-batch-minilm-bf16.json "$hone" bench minilm --device cuda --dtype bf16 --find-batch --memory-budget 8GiB \
    --iterations 20 --json
fi

if [[ $what == train || $what == all ]]; then
  for mode in bf16 bf16-graphs fp32-graphs bf16-graphs-deterministic; do
    args=(--precision "${mode%%-*}")
    [[ $mode == *graphs* ]] && args+=(--cuda-graphs)
    [[ $mode == *deterministic ]] && args+=(--deterministic)  # no cuDNN autotuning: what epoch 1 pays for it
    run "train-cnn-fmnist-$mode.json" "$hone" train -m cnn -d fashion-mnist --device cuda --epochs 4 \
      "${args[@]}" -o "$out/run-cnn-$mode" --json
  done
  run train-find-batch-minilm-bf16.json "$hone" bench minilm --train --device cuda --precision bf16 --find-batch \
    --memory-budget 8GiB --iterations 10 --json
  run lr-find-cnn-bf16.json "$hone" train -m cnn -d fashion-mnist --device cuda --precision bf16 --lr-find \
    -o "$out/lr-find-cnn" --json
fi

if [[ $what == train-fast || $what == all ]]; then
  # What "4 epochs to >= 91 % test in <= 4 s" needs: fewer, larger steps (a graphed step at batch
  # 128 is launch-and-latency bound on this small CNN), without cuDNN autotuning in epoch 1.
  for cl in "" -cl; do
    run "bench-train-cnn-bf16-graphs$cl.json" "$hone" bench cnn --train --device cuda --precision bf16 --cuda-graphs \
      --batch 128,256,512 --iterations 50 ${cl:+--channels-last} --json
  done
  for mode in ${TRAIN_FAST_MODES:-throughput throughput-deterministic b256-deterministic b128-cl-deterministic \
    b256-cl-deterministic b256-cl}; do
    case $mode in
      throughput) args=(--preset throughput) ;;
      throughput-deterministic) args=(--preset throughput --deterministic) ;;
      b256-deterministic) args=(--preset fast-gpu --batch-size 256 --lr 2.83e-3 --warmup-steps 25 --deterministic) ;;
      b128-cl-deterministic) args=(--preset fast-gpu --channels-last --deterministic) ;;
      b256-cl-deterministic) args=(--preset fast-gpu --batch-size 256 --lr 2.83e-3 --warmup-steps 25 --channels-last
        --deterministic) ;;
      b256-cl) args=(--preset fast-gpu --batch-size 256 --lr 2.83e-3 --warmup-steps 25 --channels-last) ;;
    esac
    run "train-cnn-fmnist-$mode.json" "$hone" train -m cnn -d fashion-mnist --epochs 4 "${args[@]}" \
      -o "$out/run-cnn-$mode" --json
    run "eval-cnn-fmnist-$mode.json" "$hone" eval "$out/run-cnn-$mode" --device cuda --json
  done
fi

if [[ $what == finetune || $what == all ]]; then
  run finetune-minilm-fine-foods.json "$hone" train -m minilm -d fine-foods-text --device cuda --precision bf16 \
    --epochs 3 --batch-size 32 --lr 1e-3 --warmup-steps 30 -o "$out/run-minilm-ff" --json
  run finetune-minilm-fine-foods-eval.json "$hone" eval "$out/run-minilm-ff" --device cuda --json
fi

if [[ $what == peers || $what == all ]]; then
  run peers-minilm-bf16.json "$python" bench/peers/run_peers.py --model minilm --device cuda --dtype bf16 \
    --batch 1,256 --warmup 20 --iterations 200 --repeats 1 --peers eager,compile --hone "$hone" \
    --hone-args=--cuda-graphs --json "$out/peers-minilm-bf16-full.json"
  run peers-zoo-fp32.json "$python" bench/peers/run_peers.py --model mlp,cnn,mobilenet,transformer,lstm,attention \
    --device cuda --batch 1,64 --warmup 10 --iterations 100 --repeats 1 --peers eager --hone "$hone" \
    --json "$out/peers-zoo-fp32-full.json"
fi

if [[ $what == sketch || $what == all ]]; then
  grid=${GRID:-build-gpu/bench/hone_sketched_linear_grid}
  run sketch-grid-bf16.jsonl "$grid" cuda bf16 256 1024,4096,8192 1,2,4,8 16,32,64,128
  run sketch-grid-fp16.jsonl "$grid" cuda fp16 256 1024,8192 1,8 16,128
  run sketch-grid-fp32.jsonl "$grid" cuda fp32 256 1024,8192 1,8 16,128
fi
if [[ $what == sketch-train ]]; then  # (all runs it in the full grid above)
  grid=${GRID:-build-gpu/bench/hone_sketched_linear_grid}
  run sketch-grid-bf16-train.jsonl "$grid" cuda bf16 256 1024,4096,8192 1,2 16,32 50
fi
