"""What every layer declares: its arguments (with their JSON Schema), shape rule, parameters and FLOPs."""
from __future__ import annotations

import enum
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping

import numpy as np

from specc.layers.args import Arg, ArgWarning
from specc.numerics import WholeBatch
from specc.text import value_text

if TYPE_CHECKING:
    from specc.emission import Emit

Shape = tuple[int, ...]
Params = Mapping[str, np.ndarray]  # a layer's parameters by its own names (W, b)
# backprop(dy) -> (dx, gradients by parameter name); the forward pass returns (y, backprop)
Backprop = Callable[[np.ndarray], tuple[np.ndarray, dict[str, np.ndarray]]]
Forward = tuple[np.ndarray, Backprop]


class ShapeError(Exception):
    """Raised by a shape rule; check.py turns it into a diagnostic at the layer (or one argument), or at
    `span` inside the layer's definition (an expression layer's node), with `notes` at its operands."""

    def __init__(self, message: str, hint: str | None = None, arg: str | None = None,
                 wants: str | None = None, span: Any = None, notes: tuple = ()):
        super().__init__(message)
        self.message, self.hint, self.arg, self.wants = message, hint, arg, wants
        self.span, self.notes = span, notes  # a specc.source.Span and specc.errors.Labels


class Labels(enum.Enum):
    """How a loss layer reads its labels."""

    CLASSES = "index"  # class indices (N,); one-hot rows (N, classes) are turned into indices
    TARGETS = "target"  # values (N, outputs), compared element by element


@dataclass(frozen=True)
class Scratch:
    """A workspace buffer a layer's generated code uses besides its output and input gradient.

    Declared by the layer (Layer.workspace), so that memory is planned from shapes alone,
    without generating code; the code generator refuses a buffer that was not declared.
    """

    shape: tuple[int, ...]  # per sample when batched, else the whole array
    batched: bool = True  # a leading batch axis N
    kind: str = "float"  # "float" (the network's dtype), "index" or "bool"
    phase: str = "forward"  # "forward": prediction uses it too; "backward": training only
    hwnc: bool = False  # an image (C, H, W) per sample, stored (H, W, N, C) (Layer.hwnc_capable)

    def nbytes(self, batch: int, itemsize: int) -> int:
        per_value = {"float": itemsize, "index": 8, "bool": 1}[self.kind]
        return math.prod(self.shape) * (batch if self.batched else 1) * per_value


@dataclass
class Runtime:
    """What a reference forward may use besides its input: the random stream and its own state."""

    rng: Any  # numpy.random.Generator
    state: dict  # this layer's buffers by base name (running_mean, running_var)
    # the rest of the batch, for layers that look across it (spans_batch): a numerics.WholeBatch when
    # this process holds it all, the ranks' shares under MPI (specc.training.world.Shares)
    batch: Any = field(default_factory=WholeBatch)


def size(shape: Shape) -> int:
    return math.prod(shape)


class Layer(ABC):
    """A layer type. Subclasses declare class attributes and override the rules they need.

    An instance is one layer of one network: its arguments (defaults filled in) and the
    shape that reaches it; construction infers the output shape or raises ShapeError.
    """

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    # Other frameworks' names for this layer (matched ignoring case and '_'), each with the hint an
    # unknown layer of that name gets: `CrossEntropyLoss` -> SoftmaxWithLoss and why.
    foreign_names: ClassVar[Mapping[str, str]] = {}
    doc: ClassVar[str] = ""
    signature: ClassVar[tuple[Arg, ...]] = ()  # the arguments it accepts
    # positional arity -> argument names; by default the declaration order.
    positional: ClassVar[Mapping[int, tuple[str, ...]]] = {}
    is_loss: ClassVar[bool] = False
    # Loss layers (is_loss) also have these; declared here, not defined, so that code holding a
    # Layer it knows to be the loss (a checked network's last) may use them. See losses._Loss.
    labels: ClassVar[Labels]
    loss: Callable[[Any, Any], tuple[float, Callable[[], Any]]]  # (x, t) -> (mean loss, backprop() -> dx)
    # Parameter base names numbered together, as the book does: W1, b1, W2, b2, ...
    param_names: ClassVar[tuple[str, ...]] = ()
    decays: ClassVar[tuple[str, ...]] = ()  # the parameters weight decay applies to (weights, not biases)
    # What init=auto means in a network of this activation (the book's MultiLayerNet rule):
    # "he" for ReLU-like layers, "xavier" for sigmoid-like ones, None when it has no say.
    preferred_init: ClassVar[str | None] = None
    book_name: ClassVar[str | None] = None
    # Scaling laws (the import of the book's parameters folds its test-time Dropout factor with them):
    # a positively homogeneous layer has f(c*x) = c*f(x) for c > 0; scaling `output_scales` by c
    # scales the layer's output by c.
    homogeneous: ClassVar[bool] = False
    output_scales: ClassVar[tuple[str, ...]] = ()  # the key prefix in the book's `layers` dict (Relu1), if not `name`
    flops_per_element: ClassVar[int] = 0
    # Fusion: an element-wise activation joins the kernel of a preceding head and runs in
    # place on the head's output (the head's backward never reads its own output).
    fusion_head: ClassVar[bool] = False
    activation: ClassVar[bool] = False
    # An activation f with f(max(x)) = max(f(x)) whose gradient is 0 wherever f(x) ties and x does
    # not (ReLU: below 0): a max pooling after it may take the window maxima first, and f after them,
    # and send the gradient to the same cells (Layer.pools).
    commutes_with_max: ClassVar[bool] = False
    # f(x) = max(x, 0), f'(x) = [f(x) > 0]: a head may apply it as it writes its output, and its
    # gradient as it reads the output's (Layer.absorbs).
    rectifier: ClassVar[bool] = False
    # The bounds of an activation's output, None for an open end: Sigmoid (0, 1), Tanh (-1, 1), ReLU
    # (0, None). `specc inspect activations` draws and counts saturation against them.
    value_range: ClassVar[tuple[float | None, float | None]] = (None, None)
    # The generated code keeps the output in a buffer of its own, and the input gradient in
    # another; False for layers whose output is a view of the input (Flatten) or the scores (losses).
    output_buffer: ClassVar[bool] = True
    grad_buffer: ClassVar[bool] = True
    # Its training-mode output depends on the rest of the batch (BatchNorm's statistics) or on the
    # batch's place in a random stream (Dropout's masks): it reaches them through Runtime.batch (the
    # generated code's `batch`), so that MPI ranks holding shares of a batch compute what one process
    # holding all of it does; under MPI every rank must then hold at least one sample of every batch.
    spans_batch: ClassVar[bool] = False

    def __init__(self, args: Mapping[str, Any], in_shape: Shape):
        self.args = dict(args)
        self.in_shape = tuple(in_shape)
        self.out_shape = self.infer_shape()

    # --- declared rules -------------------------------------------------------------
    def infer_shape(self) -> Shape:
        return self.in_shape

    def param_shapes(self) -> dict[str, Shape]:
        """Trainable parameters by base name (numbered later: W -> W1)."""
        return {}

    def buffer_shapes(self) -> dict[str, Shape]:
        """Non-trainable state saved with the weights (BatchNorm's running statistics)."""
        return {}

    def flops(self) -> int:
        """Forward floating-point operations per sample; a multiply-add counts 2."""
        return self.flops_per_element * size(self.in_shape)

    @classmethod
    def lint(cls, args: Mapping[str, Any]) -> list[ArgWarning]:
        """Warnings about valid arguments that likely do not do what was meant (BatchNorm's momentum=1)."""
        return []

    @classmethod
    def implied_input(cls, args: Mapping[str, Any]) -> Shape | None:
        """The input shape this layer states by itself when it comes first (Affine(784, 50))."""
        return None

    # --- runtime: initial values -------------------------------------------------------
    def param_init(self, default_init: str) -> dict[str, tuple]:
        """How each parameter starts: ("normal", std), ("zeros",) or ("ones",)."""
        return {}

    def state_init(self) -> dict[str, tuple]:
        """How each buffer of buffer_shapes() starts."""
        return {}

    def fan_in(self) -> int:
        """Inputs that reach each output unit: what He and Xavier scale the weights by."""
        raise TypeError(f"{self.name} declares no fan-in: it has no weights to initialise")

    def weight_std(self, default_init: str) -> float:
        """The std of the weights from `init` (He: sqrt(2/fan_in), Xavier: sqrt(1/fan_in))."""
        init = self.args.get("init", "auto")
        if not isinstance(init, str):
            return float(init)
        rule = default_init if init == "auto" else init
        return math.sqrt((2.0 if rule == "he" else 1.0) / self.fan_in())

    def workspace(self, grad_input: bool) -> dict[str, Scratch]:
        """The scratch buffers of the generated code, besides the output and the input gradient;
        `grad_input` says whether the input gradient is computed (the first layer needs none)."""
        return {}

    def max_tiles(self) -> int | None:
        """The window size of a max pooling whose windows tile its input (stride = size, no pad)."""
        return None

    def pools(self, activation: Layer, pool: Layer) -> bool:
        """Whether this fusion head runs the activation after it and the max pooling after that as
        one pass of its own (emit_pooled, pooled_workspace)."""
        return False

    def hwnc_capable(self) -> bool:
        """Whether this fusion head's generated code reads its input and writes its kernel's output
        as (H, W, N, C) arrays as well as (N, C, H, W): the compiler stores an activation between two
        such kernels so (Wire.hwnc_in, Wire.hwnc_out)."""
        return False

    def absorbs(self, activation: Layer) -> bool:
        """Whether this fusion head applies the activation after it itself, in its own pass
        (emit_absorbed); the activation's input gradient, the head's output gradient, then never
        exists as an array."""
        return False

    def absorbed_workspace(self, activation: Layer, grad_input: bool) -> dict[str, Scratch]:
        """The scratch buffers of that pass (the activation has none of its own)."""
        return self.workspace(grad_input)

    def emit_absorbed(self, e: Emit, activation: Emit) -> None:
        """Write that pass: through `e` this layer's lines, through `activation` the gradient of the
        activation's output (its output is this layer's)."""
        raise NotImplementedError(f"{self.name} does not absorb activations")

    def pooled_workspace(self, activation: Layer, pool: Layer, grad_input: bool) -> dict[str, Scratch]:
        """The scratch buffers of that pass (the activation and the pooling have none of their own)."""
        raise NotImplementedError(f"{self.name} does not pool")

    def emit_pooled(self, e: Emit, activation: Layer, pool: Emit) -> None:
        """Write that pass: through `e` this layer's lines, through `pool` the pooling's output and the
        gradient of it; the gradients between the three layers stay inside."""
        raise NotImplementedError(f"{self.name} does not pool")

    # --- runtime: the reference path, one layer at a time, as in the book ----------------
    @abstractmethod
    def forward(self, p: Params, x: np.ndarray, train: bool, rt: Runtime) -> Forward:
        """(y, backprop) where backprop(dy) -> (dx, grads by base name); never mutates x or dy."""

    # --- code generation: the same computation as straight-line NumPy ---------------------
    @abstractmethod
    def emit(self, e: Emit) -> None:
        """Write forward and backward lines through a specc.emission.Emit."""

    # --- derived --------------------------------------------------------------------
    @classmethod
    def positional_names(cls, count: int) -> tuple[str, ...] | None:
        if cls.positional:
            return cls.positional.get(count)
        names = tuple(a.name for a in cls.signature)
        return names[:count] if count <= len(names) else None

    @classmethod
    def max_positional(cls) -> tuple[str, ...]:
        if cls.positional:
            return cls.positional[max(cls.positional)]
        return tuple(a.name for a in cls.signature)

    def parameter_count(self) -> int:
        return sum(size(s) for s in self.param_shapes().values())

    def describe(self) -> str:
        """The layer as a call with its required arguments and any non-default ones."""
        required = [a.name for a in self.signature if a.required]
        shown = [value_text(self.args[n], quote=False) for n in required[:1]]
        shown += [f"{n}={value_text(self.args[n], quote=False)}" for n in required[1:]]
        shown += [f"{a.name}={value_text(self.args[a.name], quote=False)}" for a in self.signature
                  if not a.required and self.args.get(a.name) is not None
                  and self.args[a.name] != a.default_for(self.args)]
        return f"{self.name}({', '.join(shown)})" if shown else self.name
