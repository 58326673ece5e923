"""Every command of the command line: its help, its examples, and its flags with their defaults."""
from __future__ import annotations

import argparse
from typing import Callable

from specc.cli.argtypes import (
    fraction,
    link,
    list_of,
    non_negative_float,
    positive,
    positive_float,
    positive_workers,
    seed,
    size,
)


def add_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Each command, in the order of the help; `command(name, help, *examples)` adds one and returns its parser."""
    c = command("check", "parse, validate and infer shapes; print every error",
                "specc check models/*.net", "specc check --annotate models/simple_conv_net.net")
    c.add_argument("files", nargs="+", metavar="FILE", help=".net or IR .json files")
    c.add_argument("--annotate", action="store_true",
                   help="print the source with the shape, parameters and FLOPs that leave each line")
    c.add_argument("--max-memory", type=size, metavar="SIZE",
                   help="refuse a network whose training would need more (e.g. 2G; default: half the "
                        "machine's memory)")

    c = command("summary", "a table of layers, shapes, parameters and FLOPs",
                "specc summary models/simple_conv_net.net", "specc summary models/two_layer_net.net --json")
    c.add_argument("file", metavar="FILE", help="a .net or IR .json file")
    c.add_argument("--json", action="store_true", help="print the figures as JSON")

    c = command("compile", "print the IR (JSON) or the generated NumPy module of a network",
                "specc compile models/two_layer_net.net", "specc compile models/two_layer_net.net --emit python")
    c.add_argument("file", metavar="FILE", help="a .net or IR .json file")
    c.add_argument("--emit", choices=["json", "python"], default="json",
                   help="json: the IR document; python: a standalone module of the fused passes")

    c = command("gradcheck", "backprop against numerical gradients, per parameter (float64)",
                "specc gradcheck models/two_layer_net.net", "specc gradcheck models/simple_conv_net.net --samples 10")
    c.add_argument("file", metavar="FILE", help="a .net or IR .json file")
    c.add_argument("--batch", type=positive, default=8, metavar="N", help="samples in the random batch")
    c.add_argument("--samples", type=positive, default=40, metavar="N",
                   help="elements checked per parameter, chosen at random")
    c.add_argument("--all", action="store_true", help="check every element (slow for big layers)")
    c.add_argument("--seed", type=int, default=0, metavar="N", help="of the batch, the weights and the elements")
    c.add_argument("--unfused", action="store_true", help="check the unfused reference path")

    c = command("train", "train a network; progress, per-epoch metrics, checkpoints, curve",
                "specc train models/two_layer_net.net --epochs 3",
                "specc train models/simple_conv_net.net --iters 200 --out runs/scn")
    c.add_argument("file", metavar="FILE", help="a .net or IR .json file; its train { } section sets the defaults")
    _run_flags(c)
    c.add_argument("--lr", type=positive_float, metavar="X",
                   help="learning rate (default: the spec's, else the optimizer's: 0.01 for SGD, 0.001 for Adam)")
    c.add_argument("--optimizer", metavar="NAME", help="SGD, Momentum, Nesterov, AdaGrad, RMSprop or Adam "
                   "(default: the spec's, else SGD)")
    c.add_argument("--seed", type=seed, metavar="N", help="of the weights and the data order "
                   "(default: the spec's, else 0)")
    c.add_argument("--dtype", choices=["float32", "float64"], help="of the weights and the data "
                   "(default: the spec's, else float32)")
    c.add_argument("--out", metavar="DIR", help="run folder (default: a new folder under runs/)")
    c.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint "
                   "(default: start a new run)")
    c.add_argument("--init-from", metavar="W", help="start from the weights (and BatchNorm statistics) of a "
                   "checkpoint, e.g. one `specc import` wrote, with a fresh optimizer (default: the seeded "
                   "initial values)")
    c.add_argument("--max-memory", type=size, metavar="SIZE",
                   help="refuse a network that would need more (e.g. 2G; default: half the machine's memory)")
    c.add_argument("--as-ranks", type=positive, metavar="N", default=1,
                   help="compute every step as N MPI ranks would (their shares, their sums), in threads of "
                   "this process: it reproduces `mpiexec -n N specc train` bit for bit for N = 2, float32 "
                   "included (default: 1)")

    c = command("compare", "train variants on the same data, order and seed; one table, one plot",
                "specc compare models/mlp_4x100.net --optimizer SGD,Momentum,AdaGrad,Adam --iters 2000 "
                "--batch 128",
                "specc compare models/mlp_5x100.net models/multi_layer_net_extend.net --init 1..1e-4:log:4")
    c.add_argument("files", nargs="+", metavar="FILE",
                   help="one spec, or several (e.g. with and without BatchNorm)")
    c.add_argument("--optimizer", metavar="LIST",
                   help="optimizers to compare, e.g. SGD,Momentum,AdaGrad,Adam (default: not varied)")
    c.add_argument("--init", metavar="LIST", help="inits overriding every layer's, e.g. std=0.01,xavier,he, "
                   "or a grid of weight scales such as 1..1e-4:log:16 (default: not varied)")
    c.add_argument("--weight-decay", metavar="LIST",
                   help="weight decays to compare, e.g. 0,0.1 (default: not varied)")
    c.add_argument("--lr", metavar="LIST",
                   help="learning rates, e.g. 0.1,0.01 or 1e-3..1e-1:log:3 (default: not varied)")
    _experiment_flags(c)
    c.add_argument("--loss-at", type=positive, metavar="N",
                   help="show each variant's training loss at iteration N (the book prints every 100th; default: none)")
    c.add_argument("--out", metavar="DIR", help="the comparison's folder (default: a new folder under runs/)")

    c = command("sweep", "random or grid search of settings, scored on a validation split",
                "specc sweep models/mlp_6x100.net --train-size 500 --epochs 50 --lr 1e-6..1e-2:log "
                "--weight-decay 1e-8..1e-4:log --trials 100",
                "specc sweep --resume runs/sweep-20261201-101500")
    c.add_argument("file", nargs="?", metavar="FILE", help="the spec (left out with --resume: the saved one)")
    c.add_argument("--lr", metavar="RANGE", help="e.g. 1e-6..1e-2:log (log-uniform), 0.001..0.1, a list "
                   "0.1,0.01, or a grid 1e-3..1e-1:log:5 (default: the spec's, not searched)")
    c.add_argument("--weight-decay", metavar="RANGE", help="e.g. 1e-8..1e-4:log (default: the spec's, not searched)")
    c.add_argument("--trials", type=positive, metavar="N", help="random trials (default 20; a sweep of grids "
                   "without --trials tries every combination)")
    c.add_argument("--validation", type=fraction, metavar="F",
                   help="fraction of the training samples held out to score trials (default 0.2); "
                   "the test set is never used")
    c.add_argument("--optimizer", metavar="NAME", help="the optimizer of every trial (default: the spec's)")
    c.add_argument("--seed-per-trial", action="store_true",
                   help="each trial draws its own seed of the weights and the data order, as the book's trials "
                        "do (its best is then partly the luck of the draw); the validation split stays the one of "
                        "--seed (default: every trial starts from the same weights)")
    _experiment_flags(c)
    c.add_argument("--top", type=positive, default=20, metavar="N", help="trials ranked and plotted")
    c.add_argument("--out", metavar="DIR", help="the sweep's folder (default: a new folder under runs/)")
    c.add_argument("--resume", metavar="DIR",
                   help="continue the sweep in DIR: finished trials are not rerun (default: a new sweep)")

    c = command("eval", "loss, accuracy and confusion matrix of trained weights",
                "specc eval models/two_layer_net.net --weights runs/two/best.npz",
                "specc eval models/two_layer_net.net --weights runs/two/weights.npz --split train")
    c.add_argument("file", metavar="FILE", help="the spec the weights were trained with")
    c.add_argument("--weights", required=True, metavar="W", help="weights.npz or best.npz of a run, or one of "
                   "the book's .pkl files (required)")
    c.add_argument("--data", metavar="D", help="as for train (default: the embedded MNIST sample)")
    c.add_argument("--split", choices=["test", "train"], default="test", help="which part of the data set")
    c.add_argument("--dtype", choices=["float16", "float32", "float64"], default="float32",
                   help="of the weights, the data and the forward pass; float16 is shown beside float32 and "
                        "float64 (the book's half_float_network.py)")

    c = command("inspect", "look inside: activation histograms, first-layer filters, misclassified digits",
                "specc inspect activations models/mlp_5x100_sigmoid.net --init std=1,0.01,xavier,he",
                "specc inspect filters models/simple_conv_net.net --weights runs/scn/weights.npz",
                "specc inspect misclassified models/simple_conv_net.net --weights runs/scn/weights.npz --count 20")
    c.add_argument("view", metavar="VIEW", help="activations (each activation layer's values), filters (the first "
                   "Convolution's, before and after training) or misclassified (the first test samples "
                   "the weights get wrong)")
    c.add_argument("file", metavar="FILE", help="a .net or IR .json file")
    c.add_argument("--weights", metavar="W", help="a checkpoint, or one of the book's .pkl files (default: the "
                   "seeded initial values; misclassified requires it)")
    c.add_argument("--init", metavar="LIST", help="activations: inits overriding every layer's, one row of "
                   "histograms each, e.g. std=1,0.01,xavier,he (default: the spec's)")
    c.add_argument("--random", type=positive, metavar="N", help="activations: N standard-normal inputs, as the "
                   "book (default: 1000, unless --data)")
    c.add_argument("--data", metavar="D", help="activations: feed test samples of D instead of random inputs; "
                   "misclassified: the data set (default: the embedded MNIST sample)")
    c.add_argument("--count", type=positive, metavar="N", help="activations: test samples of --data (default "
                   "1000); misclassified: samples shown (default 20)")
    c.add_argument("--seed", type=seed, metavar="N", help="activations, filters: of the initial weights and the "
                   "random inputs (default: 0)")
    c.add_argument("-o", "--out", metavar="OUT.png", help="the picture to write (default: FILE's name and the view, "
                   "e.g. simple_conv_net-filters.png, in the current folder)")

    c = command("predict", "predicted classes, with probabilities, for images",
                "specc predict models/two_layer_net.net --weights runs/two/best.npz digit.png --invert")
    c.add_argument("file", metavar="FILE", help="the spec the weights were trained with")
    c.add_argument("--weights", required=True, metavar="W", help="weights.npz or best.npz of a run (required)")
    c.add_argument("images", nargs="+", metavar="IMAGES", help=".npy, .npz, IDX, PGM or PNG files")
    c.add_argument("--invert", action="store_true",
                   help="dark digits on a light background: invert them (MNIST digits are white on black)")
    c.add_argument("--top", type=positive, default=3, metavar="N", help="classes shown per image")
    c.add_argument("--limit", type=positive, default=20, metavar="N", help="images shown")

    c = command("bench", "where a training step's time goes, kernel by kernel",
                "specc bench models/simple_conv_net.net", "specc bench models/two_layer_net.net --steps 200")
    c.add_argument("file", metavar="FILE", help="a .net or IR .json file; its train section names the optimizer")
    c.add_argument("--batch", type=positive, default=100, metavar="N", help="samples per step")
    c.add_argument("--steps", type=positive, default=50, metavar="N", help="timed steps")
    c.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="of the weights and data")
    _threads_flag(c)

    c = command("plan", "data parallelism on paper: the expected speedup on N workers over a network link",
                "specc plan models/simple_conv_net.net",
                "specc plan models/two_layer_net.net --workers 2,8,32 --link 25:10 --step-ms 0.3")
    c.add_argument("file", metavar="FILE", help="a .net or IR .json file; its train section gives batch and dtype")
    c.add_argument("--workers", type=list_of(positive_workers), default="2,4,8,16,32,64", metavar="LIST",
                   help="numbers of workers (MPI ranks), e.g. 2,4,8")
    c.add_argument("--link", type=list_of(link), default="10:25,100:2", metavar="LIST",
                   help="each worker's link, GBIT:LATENCY_US (Gbit/s each way, microseconds per message)")
    c.add_argument("--batch", type=positive, metavar="N", help="the global batch (default: the spec's, else 100)")
    c.add_argument("--dtype", choices=["float32", "float64"], help="of the gradients sent "
                   "(default: the spec's, else float32)")
    c.add_argument("--step-ms", type=positive_float, metavar="MS", help="one process's training step at "
                   "that batch (default: measured here, with one BLAS thread, as each worker would run, or "
                   "OPENBLAS_NUM_THREADS's)")
    c.add_argument("--fixed-ms", type=non_negative_float, metavar="MS", help="the part of the step that "
                   "does not shrink with the batch (the update, per-step overhead), which no worker shares "
                   "(default: from the step measured at a quarter of the batch too, else 0)")
    c.add_argument("--json", action="store_true", help="print the plan as JSON")

    c = command("report", "one self-contained HTML page of a training run (or of runs side by side)",
                "specc report runs/scn", "specc report runs/a runs/b -o compare.html")
    c.add_argument("runs", nargs="+", metavar="RUN", help="run folders that specc train wrote")
    c.add_argument("-o", "--out", metavar="OUT.html",
                   help="where to write the page (default: RUN/report.html, or report.html for several runs)")

    c = command("export", "write the ONNX model of a network (needs specc[onnx])",
                "specc export models/two_layer_net.net --weights runs/two/best.npz -o two.onnx")
    c.add_argument("file", metavar="FILE", help="a .net or IR .json file")
    c.add_argument("--weights", metavar="W", help="a checkpoint (default: the seeded initial values)")
    c.add_argument("-o", "--out", required=True, metavar="OUT.onnx", help="the ONNX file to write (required)")

    c = command("import", "turn an ONNX model into a .net file and a checkpoint (needs specc[onnx])",
                "specc import two.onnx -o two.net")
    c.add_argument("model", metavar="MODEL.onnx", help="a chain of common ONNX operators")
    c.add_argument("-o", "--out", required=True, metavar="OUT.net", help="the .net file to write (required)")
    c.add_argument("--weights-out", metavar="W.npz", help="the checkpoint (default: OUT.npz beside OUT.net)")

    command("schema", "print the JSON Schema of the IR", "specc schema > ir.schema.json")

    # computational graphs (specc.graph)
    c = command("grad", "evaluate a computational graph forward and backward, node by node",
                "specc grad models/graphs/apple.net", "specc grad models/graphs/apple.net --json")
    c.add_argument("file", metavar="FILE", help="a .net file of input, let and output statements")
    c.add_argument("--json", action="store_true", help="print the values and gradients as JSON")
    c.add_argument("--precise", action="store_true", help="full float64 precision (220.00000000000003)")
    c.add_argument("--no-check", action="store_true", help="skip the check against central differences")
    c = command("draw", "draw a computational graph or a layer pipeline as SVG",
                "specc draw models/graphs/apple.net", "specc draw models/simple_conv_net.net -o scn.svg")
    c.add_argument("file", metavar="FILE", help="a graph or a network of layers")
    c.add_argument("-o", "--out", metavar="OUT.svg", help="where to write the SVG (default: FILE with .svg)")
    c = command("explain", "a built-in layer's backward derived step by step from its expression",
                "specc explain Sigmoid", "specc explain Affine -o affine.svg")
    c.add_argument("name", metavar="LAYER", help="ReLU, LeakyReLU, Sigmoid, Tanh or Affine")
    c.add_argument("-o", "--out", metavar="OUT.svg", help="also draw its graph with the values as an SVG "
                   "(default: no drawing)")
    c.add_argument("--precise", action="store_true", help="full float64 precision")

    command("lsp", "run the Language Server (stdin/stdout) for editors; needs the lsp extra", "specc lsp")

    c = command("lint", "warn of what is allowed but likely wrong (the book's lessons); exit 1 if any",
                "specc lint models/*.net")
    c.add_argument("files", nargs="+", metavar="FILE", help=".net or IR .json files")

    c = command("fmt", "rewrite .net files in the one canonical layout (comments kept)",
                "specc fmt models/*.net", "specc fmt --check models/*.net")
    c.add_argument("files", nargs="+", metavar="FILE", help=".net files")
    c.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file would change")
    c.add_argument("--diff", action="store_true", help="write nothing; print a unified diff, exit 1 if any")
    c.add_argument("--annotate", action="store_true",
                   help="write each step's output shape, parameters and FLOPs as trailing comments")


def _run_flags(c: argparse.ArgumentParser) -> None:
    """The data and the length of a run: train's flags, which compare and sweep pass to every run."""
    c.add_argument("--data", metavar="D", help="a folder of IDX files, an .npz file, or mnist / fashion-mnist "
                   "(default: the spec's, else the embedded 5,000-digit MNIST sample)")
    length = c.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=positive, metavar="N",
                        help="passes over the training set (default: the spec's, else 10)")
    length.add_argument("--iters", type=positive, metavar="N",
                        help="training steps instead of epochs (default: the spec's, if any)")
    c.add_argument("--batch", type=positive, metavar="N", help="samples per step (default: the spec's, else 100)")
    _threads_flag(c)


def _threads_flag(c: argparse.ArgumentParser) -> None:
    c.add_argument("--threads", type=positive, metavar="N", help="BLAS threads (default: OPENBLAS_NUM_THREADS or "
                   "OMP_NUM_THREADS if set, else 1, the fastest for networks of this size)")


def _experiment_flags(c: argparse.ArgumentParser) -> None:
    """The flags compare and sweep share with train (each variant or trial is a normal run)."""
    _run_flags(c)
    c.add_argument("--seed", type=seed, metavar="N", help="the seed of every variant (default: the spec's)")
    c.add_argument("--train-size", type=positive, metavar="N",
                   help="train on the first N training samples (default: all)")
    c.add_argument("--eval-sample", type=positive, metavar="N", help="evaluate each epoch on the first N train "
                   "and test samples (the book's evaluate_sample_num_per_epoch; default: all)")

