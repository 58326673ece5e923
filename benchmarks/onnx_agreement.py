"""specc against onnxruntime on real data: train each network briefly, export it, and compare the class
probabilities of onnxruntime and specc on 1,000 test images (max abs difference, class agreement),
then import the exported model back and compare again.

    python benchmarks/onnx_agreement.py models/*.net --data ../shared/data/mnist --iters 200
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

from specc import api
from specc.errors import SpeccError
from specc.interop.onnx_export import to_onnx
from specc.interop.onnx_import import imported
from specc.training import data


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("specs", nargs="+")
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--images", type=int, default=1000)
    args = p.parse_args()
    dataset = data.load(args.data)
    print(f"{'network':28} {'test acc':>8} {'max |p_ort - p_specc|':>22} {'same class':>10} "
          f"{'round trip max |dp|':>20}")
    for spec in args.specs:
        with tempfile.TemporaryDirectory() as tmp:
            trainer = api.training(spec, out=Path(tmp) / "run", data=args.data, iters=args.iters)
            try:
                for _ in trainer.run():
                    pass
            finally:
                trainer.close()
            net = trainer.net
            x = (dataset.x_test[:args.images].astype(np.float32) / 255).reshape(-1, *net.input_shape)
            t = dataset.t_test[:args.images]
            model = to_onnx(net)
            (Path(tmp) / "m.onnx").write_bytes(model.SerializeToString())
            session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
            got, want = session.run(None, {"input": x})[0], net.probabilities(x)
            try:  # (a layer written as an expression comes back only where it matches a built-in)
                back = imported(Path(tmp) / "m.onnx", Path(tmp) / "back.net").net
                round_trip = f"{np.abs(back.probabilities(x) - want).max():20.2e}"
            except SpeccError as e:
                round_trip = f"{'not imported: ' + e.diagnostics[0].code:>20}"
            print(f"{Path(spec).name:28} {(want.argmax(1) == t).mean():8.4f} {np.abs(got - want).max():22.2e} "
                  f"{(got.argmax(1) == want.argmax(1)).mean():10.2%} {round_trip}")


if __name__ == "__main__":
    main()
