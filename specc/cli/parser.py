"""The command line's arguments: every command, its flags with their defaults and help."""
from __future__ import annotations

import argparse
import sys

from rich.console import Console

from specc import __version__
from specc.errors import SpeccError
from specc.memory import parse_size


def build(stdout: Console, stderr: Console) -> argparse.ArgumentParser:
    class Parser(argparse.ArgumentParser):
        """Usage, help and usage errors go to the consoles run() was given."""

        def _print_message(self, message: str, file=None) -> None:
            if message:
                console = stderr if file is None or file is sys.stderr else stdout
                console.file.write(message)
                console.file.flush()

    p = Parser(prog="specc", description="Compile, check and summarise neural networks "
                                "written as .net layer pipelines.")
    p.add_argument("--version", action="version", version=f"specc {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    c = sub.add_parser("check", help="parse, validate and infer shapes; print every error")
    c.add_argument("files", nargs="+", metavar="FILE", help=".net or IR .json files")
    c.add_argument("--annotate", action="store_true",
                   help="print the source with the shape, parameters and FLOPs that leave each line")

    c = sub.add_parser("summary", help="a table of layers, shapes, parameters and FLOPs")
    c.add_argument("file", metavar="FILE")
    c.add_argument("--json", action="store_true", help="print the figures as JSON")

    c = sub.add_parser("compile", help="print the IR (JSON) or the generated NumPy module of a network")
    c.add_argument("file", metavar="FILE")
    c.add_argument("--emit", choices=["json", "python"], default="json",
                   help="json: the IR document; python: a standalone module of the fused passes")

    c = sub.add_parser("gradcheck", help="backprop against numerical gradients, per parameter (float64)")
    c.add_argument("file", metavar="FILE")
    c.add_argument("--batch", type=_positive, default=8, help="samples in the random batch (default 8)")
    c.add_argument("--samples", type=_positive, default=40,
                   help="elements checked per parameter, chosen at random (default 40)")
    c.add_argument("--all", action="store_true", help="check every element (slow for big layers)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--unfused", action="store_true", help="check the unfused reference path")

    c = sub.add_parser("train", help="train a network; progress, per-epoch metrics, checkpoints, curve")
    c.add_argument("file", metavar="FILE")
    c.add_argument("--data", metavar="D", help="a folder of IDX files, an .npz file, or mnist / fashion-mnist "
                   "(default: the embedded 5,000-digit MNIST sample)")
    length = c.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=_positive, metavar="N")
    length.add_argument("--iters", type=_positive, metavar="N", help="training steps instead of epochs")
    c.add_argument("--batch", type=_positive, metavar="N")
    c.add_argument("--lr", type=_positive_float, metavar="X")
    c.add_argument("--optimizer", metavar="NAME", help="SGD, Momentum, Nesterov, AdaGrad, RMSprop or Adam")
    c.add_argument("--seed", type=_seed, metavar="N")
    c.add_argument("--dtype", choices=["float32", "float64"])
    c.add_argument("--out", metavar="DIR", help="run folder (default: a new folder under runs/)")
    c.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint")
    c.add_argument("--init-from", metavar="W", help="start from the weights (and BatchNorm statistics) of a "
                   "checkpoint, e.g. one `specc import` wrote, with a fresh optimizer")
    c.add_argument("--max-memory", type=_size, metavar="SIZE",
                   help="refuse a network that would need more (e.g. 2G; default: half the machine's memory)")

    c = sub.add_parser("compare", help="train variants on the same data, order and seed; one table, one plot")
    c.add_argument("files", nargs="+", metavar="FILE", help="one spec, or several (e.g. with and without BatchNorm)")
    c.add_argument("--optimizer", metavar="LIST", help="optimizers to compare, e.g. SGD,Momentum,AdaGrad,Adam")
    c.add_argument("--init", metavar="LIST", help="inits overriding every layer's, e.g. std=0.01,xavier,he, "
                   "or a grid of weight scales such as 1..1e-4:log:16")
    c.add_argument("--weight-decay", metavar="LIST", help="e.g. 0,0.1")
    c.add_argument("--lr", metavar="LIST", help="learning rates, e.g. 0.1,0.01 or 1e-3..1e-1:log:3")
    _experiment_flags(c)
    c.add_argument("--loss-at", type=_positive, metavar="N",
                   help="show each variant's training loss at iteration N (the book prints every 100th)")
    c.add_argument("--out", metavar="DIR", help="the comparison's folder (default: a new folder under runs/)")

    c = sub.add_parser("sweep", help="random or grid search of settings, scored on a validation split")
    c.add_argument("file", nargs="?", metavar="FILE", help="the spec (left out with --resume: the saved one)")
    c.add_argument("--lr", metavar="RANGE", help="e.g. 1e-6..1e-2:log (log-uniform), 0.001..0.1, a list "
                   "0.1,0.01, or a grid 1e-3..1e-1:log:5")
    c.add_argument("--weight-decay", metavar="RANGE", help="e.g. 1e-8..1e-4:log")
    c.add_argument("--trials", type=_positive, metavar="N", help="random trials (default 20; a sweep of grids "
                   "without --trials tries every combination)")
    c.add_argument("--validation", type=_fraction, metavar="F",
                   help="fraction of the training samples held out to score trials (default 0.2); "
                   "the test set is never used")
    c.add_argument("--optimizer", metavar="NAME")
    _experiment_flags(c)
    c.add_argument("--top", type=_positive, default=20, metavar="N", help="trials ranked and plotted (default 20)")
    c.add_argument("--out", metavar="DIR", help="the sweep's folder (default: a new folder under runs/)")
    c.add_argument("--resume", metavar="DIR", help="continue the sweep in DIR: finished trials are not rerun")

    c = sub.add_parser("eval", help="loss, accuracy and confusion matrix of trained weights")
    c.add_argument("file", metavar="FILE")
    c.add_argument("--weights", required=True, metavar="W", help="weights.npz or best.npz of a run")
    c.add_argument("--data", metavar="D")
    c.add_argument("--split", choices=["test", "train"], default="test")

    c = sub.add_parser("predict", help="predicted classes, with probabilities, for images")
    c.add_argument("file", metavar="FILE")
    c.add_argument("--weights", required=True, metavar="W")
    c.add_argument("images", nargs="+", metavar="IMAGES", help=".npy, .npz, IDX, PGM or PNG files")
    c.add_argument("--invert", action="store_true",
                   help="dark digits on a light background: invert them (MNIST digits are white on black)")
    c.add_argument("--top", type=_positive, default=3, help="classes shown per image (default 3)")
    c.add_argument("--limit", type=_positive, default=20, help="images shown (default 20)")

    c = sub.add_parser("bench", help="where a training step's time goes, kernel by kernel")
    c.add_argument("file", metavar="FILE")
    c.add_argument("--batch", type=_positive, default=100)
    c.add_argument("--steps", type=_positive, default=50, help="timed steps (default 50)")
    c.add_argument("--dtype", choices=["float32", "float64"], default="float32")

    c = sub.add_parser("export", help="write the ONNX model of a network (needs specc[onnx])")
    c.add_argument("file", metavar="FILE")
    c.add_argument("--weights", metavar="W", help="a checkpoint (default: the seeded initial values)")
    c.add_argument("-o", "--out", required=True, metavar="OUT.onnx")

    c = sub.add_parser("import", help="turn an ONNX model into a .net file and a checkpoint (needs specc[onnx])")
    c.add_argument("model", metavar="MODEL.onnx")
    c.add_argument("-o", "--out", required=True, metavar="OUT.net")
    c.add_argument("--weights-out", metavar="W.npz", help="the checkpoint (default: OUT.npz beside OUT.net)")

    sub.add_parser("schema", help="print the JSON Schema of the IR")

    # computational graphs (specc.graph)
    c = sub.add_parser("grad", help="evaluate a computational graph forward and backward, node by node")
    c.add_argument("file", metavar="FILE")
    c.add_argument("--json", action="store_true", help="print the values and gradients as JSON")
    c.add_argument("--precise", action="store_true", help="full float64 precision (220.00000000000003)")
    c.add_argument("--no-check", action="store_true", help="skip the check against central differences")
    c = sub.add_parser("draw", help="draw a computational graph or a layer pipeline as SVG")
    c.add_argument("file", metavar="FILE")
    c.add_argument("-o", "--out", metavar="OUT.svg", help="where to write the SVG (default: FILE with .svg)")
    c = sub.add_parser("explain", help="a built-in layer's backward derived step by step from its expression")
    c.add_argument("name", metavar="LAYER", help="ReLU, LeakyReLU, Sigmoid, Tanh or Affine")
    c.add_argument("-o", "--out", metavar="OUT.svg", help="also draw its graph with the values as an SVG")
    c.add_argument("--precise", action="store_true", help="full float64 precision")

    sub.add_parser("lsp", help="run the Language Server (stdin/stdout) for editors; needs the lsp extra")

    c = sub.add_parser("lint", help="warn of what is allowed but likely wrong (the book's lessons); exit 1 if any")
    c.add_argument("files", nargs="+", metavar="FILE", help=".net or IR .json files")

    c = sub.add_parser("fmt", help="rewrite .net files in the one canonical layout (comments kept)")
    c.add_argument("files", nargs="+", metavar="FILE", help=".net files")
    c.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file would change")
    c.add_argument("--diff", action="store_true", help="write nothing; print a unified diff, exit 1 if any")
    c.add_argument("--annotate", action="store_true",
                   help="write each step's output shape, parameters and FLOPs as trailing comments")
    return p


def _experiment_flags(c: argparse.ArgumentParser) -> None:
    """The flags compare and sweep share with train (each variant or trial is a normal run)."""
    c.add_argument("--data", metavar="D", help="as for train (default: the embedded sample)")
    length = c.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=_positive, metavar="N")
    length.add_argument("--iters", type=_positive, metavar="N")
    c.add_argument("--batch", type=_positive, metavar="N")
    c.add_argument("--seed", type=_seed, metavar="N")
    c.add_argument("--train-size", type=_positive, metavar="N", help="train on the first N training samples")
    c.add_argument("--eval-sample", type=_positive, metavar="N", help="evaluate each epoch on the first N train "
                   "and test samples (the book's evaluate_sample_num_per_epoch; default: all)")


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except SpeccError:
        raise argparse.ArgumentTypeError(f"not a memory size: {text} (write 512M, 2G or 1.5GiB)") from None


def _number(kind: type, low: float, high: float, what: str):
    """An argparse type: a number of `kind` from low to high (exclusive bounds where float)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, not {text}") from None
        if not low <= value <= high or (kind is float and value in (low, high)):
            raise argparse.ArgumentTypeError(f"must be {what}, not {text}")
        return value
    return parse


_positive = _number(int, 1, float("inf"), "a positive integer")


_positive_float = _number(float, 0.0, float("inf"), "a positive number")


_seed = _number(int, 0, 2**32 - 1, f"a whole number from 0 to {2**32 - 1}")


_fraction = _number(float, 0.0, 1.0, "a number between 0 and 1")
