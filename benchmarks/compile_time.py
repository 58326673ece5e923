"""Compile time against network size: `(Affine(16) -> Tanh) * N` from 500 to 10,000 layers, each
stage timed in one process (front end, plan, code generation with loading, and the whole load).

    python benchmarks/compile_time.py [--sizes 500,1000,2000,5000,10000]
"""
from __future__ import annotations

import argparse
import time

import specc
from specc import codegen, compiler


def spec(layers: int) -> str:
    return f"input 16\n(Affine(16) -> Tanh) * {(layers - 2) // 2} -> Affine(10) -> SoftmaxWithLoss\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,1000,2000,5000,10000")
    args = parser.parse_args()
    print(f"{'layers':>7} {'check s':>8} {'plan s':>7} {'codegen s':>10} {'load s':>7} {'s per 1k layers':>16}")
    for n in map(int, args.sizes.split(",")):
        text = spec(n)
        t0 = time.perf_counter()
        checked = specc.check_text(text)
        t1 = time.perf_counter()
        p = compiler.plan(checked)
        t2 = time.perf_counter()
        codegen.generate(p)
        t3 = time.perf_counter()
        specc.compile(text)  # everything: front end, memory check, plan, code, exec, initial values
        t4 = time.perf_counter()
        print(f"{len(checked.layers):>7,} {t1 - t0:>8.2f} {t2 - t1:>7.2f} {t3 - t2:>10.2f} {t4 - t3:>7.2f} "
              f"{(t4 - t3) / len(checked.layers) * 1000:>16.2f}")


if __name__ == "__main__":
    main()
