"""Python torch can load hone's operators: torch.ops.hone.sketched_linear from libhone_kernels.so
matches the formula written out in Python, and its gradients pass torch.autograd.gradcheck;
torch.ops.hone.int8_weight_only_linear matches x @ (W * s[:, None]).T + b.

Usage: python sketched_linear_op_test.py /path/to/libhone_kernels.so   (run by ctest)
"""
import sys

import torch


def formula(x, s1, s2, u1, u2, bias):
    terms = s1.shape[0]
    y = sum(x @ s1[i] @ u1[i] + x @ u2[i] @ s2[i] for i in range(terms)) / (2 * terms)
    return y if bias is None else y + bias


def main() -> int:
    torch.ops.load_library(sys.argv[1])
    op = torch.ops.hone.sketched_linear
    gen = torch.Generator().manual_seed(3)
    failures = []
    for dtype, tolerance in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        x = torch.randn(9, 23, generator=gen, dtype=dtype)
        s1 = torch.randn(2, 23, 5, generator=gen, dtype=dtype)
        s2 = torch.randn(2, 5, 13, generator=gen, dtype=dtype)
        u1 = torch.randn(2, 5, 13, generator=gen, dtype=dtype)
        u2 = torch.randn(2, 23, 5, generator=gen, dtype=dtype)
        bias = torch.randn(13, generator=gen, dtype=dtype)
        for b in (bias, None):
            got, want = op(x, s1, s2, u1, u2, b), formula(x, s1, s2, u1, u2, b)
            error = ((got - want).norm() / want.norm()).item()
            print(f"{dtype} bias={b is not None}: relative error {error:.2e}")
            if not error < tolerance:
                failures.append(f"{dtype} bias={b is not None}: {error:.2e} >= {tolerance}")
    inputs = [torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=grad)
              for shape, grad in (((4, 6), True), ((2, 6, 3), True), ((2, 3, 5), True),
                                  ((2, 3, 5), False), ((2, 6, 3), False), ((5,), True))]
    if not torch.autograd.gradcheck(op, inputs, eps=1e-6, atol=1e-7, rtol=1e-6):
        failures.append("gradcheck")
    print("gradcheck passed" if "gradcheck" not in failures else "gradcheck FAILED")
    weight = torch.randint(-127, 128, (29, 37), generator=gen, dtype=torch.int8)
    scales = torch.rand(29, generator=gen) * 0.01
    x, bias = torch.randn(5, 37, generator=gen), torch.randn(29, generator=gen)
    got = torch.ops.hone.int8_weight_only_linear(x, weight, scales, bias)
    want = x.double() @ (weight.double() * scales.double()[:, None]).T + bias.double()
    error = ((got.double() - want).norm() / want.norm()).item()
    print(f"int8_weight_only_linear fp32: relative error {error:.2e}")
    if not error < 1e-5:
        failures.append(f"int8_weight_only_linear: {error:.2e} >= 1e-5")
    for failure in failures:
        print("FAIL:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
