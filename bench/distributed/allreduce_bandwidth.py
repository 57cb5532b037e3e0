#!/usr/bin/env python3
"""All-reduce bandwidth of the backend hone's data parallelism uses, measured with PyTorch's own
torch.distributed (the same c10d and gloo/NCCL as libtorch): the scaling model's bandwidth input
(src/train/distributed/scaling_model.h).

    python bench/distributed/allreduce_bandwidth.py --backend gloo --nproc 2 [--sizes 1e6,25e6]
    python bench/distributed/allreduce_bandwidth.py --backend nccl --nproc 2      # needs 2 GPUs

Prints, per message size, the median time and the bus bandwidth 2(p-1)/p * bytes / time, as JSON
lines. Random tensors: timing only.
"""
import argparse
import json
import os
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def worker(rank, args, port):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    device = torch.device("cuda", rank) if args.backend == "nccl" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(args.backend, rank=rank, world_size=args.nproc)
    p = args.nproc
    for size in [int(float(s)) for s in args.sizes.split(",")]:
        t = torch.randn(size // 4, device=device)
        for _ in range(args.warmup):
            dist.all_reduce(t)
        times = []
        for _ in range(args.repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            dist.all_reduce(t)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        if rank == 0:
            print(json.dumps({"backend": args.backend, "ranks": p, "bytes": size, "median_ms": median * 1e3,
                              "bus_gbs": 2 * (p - 1) / p * size / median / 1e9}), flush=True)
    dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="gloo", choices=["gloo", "nccl"])
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--sizes", default="65536,1e6,4e6,25e6")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(worker, args=(args, port), nprocs=args.nproc)


if __name__ == "__main__":
    main()
