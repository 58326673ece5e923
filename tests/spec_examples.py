"""The language examples of DESIGN.md and README.md, as written there, shared by the stage tests."""

TWO_LAYER = """\
# models/two_layer_net.net — the network of the backpropagation chapter
Affine(784, 50) -> ReLU -> Affine(50, 10) -> SoftmaxWithLoss
"""

TWO_LAYER_README = "Affine(784,50) -> ReLU -> Affine(50,10) -> SoftmaxWithLoss\n"

INFERRED = """\
# shapes inferred from the declared input; keyword arguments; multi-line chains
input 784
Affine(50, init=he) -> ReLU
  -> Affine(10)
  -> SoftmaxWithLoss
"""

CONV = """\
# images: the convolution chapter's SimpleConvNet
input 1x28x28
Convolution(30, kernel=5) -> ReLU -> Pooling(2, stride=2)
  -> Affine(100) -> ReLU -> Affine(10) -> SoftmaxWithLoss
"""

BLOCKS = """\
# parameterised blocks and repetition
block Dense(n) = Affine(n) -> BatchNorm -> ReLU -> Dropout(0.1)
input 784
Dense(100) * 3 -> Affine(10) -> SoftmaxWithLoss
"""

BLOCKS_README = """\
# parameterised blocks (with defaults) and repetition; `(A -> B) * 2` repeats a group
block Dense(n, p=0.1) = Affine(n) -> BatchNorm -> ReLU -> Dropout(p)
input 784
Dense(100) * 3 -> Affine(10) -> SoftmaxWithLoss
"""

TRAIN = """\
# training settings live beside the model; command-line flags override them
train {
  optimizer = Adam(lr=0.001)
  batch = 100
  epochs = 10
  weight_decay = 1e-4
  seed = 0
}
"""

# Every example that is a whole network (the train section alone is not one).
NETWORKS = {
    "two_layer": TWO_LAYER,
    "two_layer_readme": TWO_LAYER_README,
    "inferred": INFERRED,
    "conv": CONV,
    "blocks": BLOCKS,
    "blocks_readme": BLOCKS_README,
    "train": TWO_LAYER + TRAIN,
}

EXAMPLES = {**NETWORKS, "train_only": TRAIN}
