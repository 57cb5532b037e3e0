"""Python torch can load hone's fused residual-add LayerNorm: torch.ops.hone.add_layer_norm from
libhone_kernels.so matches torch.nn.functional.layer_norm(x + residual) computed in fp32, for 2-D and
3-D inputs in every dtype, on the CPU and (where a GPU is visible) on CUDA; bad inputs raise.

Usage: python add_layer_norm_op_test.py /path/to/libhone_kernels.so   (run by ctest)
"""
import sys

import torch

# Relative tolerances by ‖a − b‖ / ‖b‖, as tests/support/tolerances.h's kFp32, kBf16, kFp16.
TOLERANCES = {torch.float32: 1e-5, torch.bfloat16: 1e-2, torch.float16: 5e-3}


def reference(x, residual, weight, bias, eps):
    hidden = x.shape[-1]
    y = torch.nn.functional.layer_norm(x.float() + residual.float(), (hidden,), weight.float(), bias.float(), eps)
    return y.to(x.dtype)


def main() -> int:
    torch.ops.load_library(sys.argv[1])
    op = torch.ops.hone.add_layer_norm
    gen = torch.Generator().manual_seed(5)
    failures = []
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for dtype, tolerance in TOLERANCES.items():
            for shape in ((2, 7, 384), (5, 37)):
                hidden = shape[-1]
                x = (torch.randn(shape, generator=gen) * 2 + 0.5).to(device, dtype)
                residual = torch.randn(shape, generator=gen).to(device, dtype)
                weight = (torch.randn(hidden, generator=gen) * 0.5 + 1).to(device, dtype)
                bias = (torch.randn(hidden, generator=gen) * 0.1).to(device, dtype)
                got, want = op(x, residual, weight, bias, 1e-12), reference(x, residual, weight, bias, 1e-12)
                if got.dtype != dtype or got.shape != x.shape:
                    failures.append(f"{device} {dtype} {shape}: got {got.dtype} {tuple(got.shape)}")
                    continue
                error = ((got.double() - want.double()).norm() / want.double().norm()).item()
                print(f"{device} {dtype} {shape}: relative error {error:.2e}")
                if not error < tolerance:
                    failures.append(f"{device} {dtype} {shape}: {error:.2e} >= {tolerance}")
    try:
        op(torch.randn(3, 16), torch.randn(3, 15), torch.randn(16), torch.randn(16), 1e-5)
        failures.append("a residual of the wrong shape was accepted")
    except RuntimeError as error:
        if "residual must have the input's shape" not in str(error):
            failures.append(f"unexpected error message: {error}")
    for failure in failures:
        print("FAIL:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
