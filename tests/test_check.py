"""Stage 4, check: shape inference and the network rules, through the API (so errors are placed)."""
from __future__ import annotations

import pytest
from spec_examples import NETWORKS

import specc
from specc.check import check
from specc.errors import SpecError
from specc.ir import from_json
from specc.reading import decode_source
from specc.source import Span


def errors_of(text: str) -> list:
    with pytest.raises(SpecError) as info:
        specc.check_text(text, "t.net")
    assert info.value.source is not None and info.value.name == "t.net"
    return list(info.value.diagnostics)


def one_error(text: str):
    (d,) = errors_of(text)
    return d


def shapes(net) -> list[tuple]:
    return [c.out_shape for c in net.layers]


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_every_example_checks(name):
    net = specc.check_text(NETWORKS[name])
    assert net.layers[-1].layer.is_loss


# --- shape inference ----------------------------------------------------------------------------

def test_affine_infers_its_input_size():
    net = specc.check_text(NETWORKS["inferred"])
    assert net.input_shape == (784,)
    assert shapes(net) == [(50,), (50,), (10,), (10,)]
    assert net.layers[0].params == {"W1": (784, 50), "b1": (50,)}
    assert net.layers[2].params == {"W2": (50, 10), "b2": (10,)}


def test_a_first_layer_that_states_its_input_needs_no_input_line():
    net = specc.check_text(NETWORKS["two_layer_readme"])
    assert net.input_shape == (784,)
    assert net.network.input_shape is None


def test_an_image_reaching_affine_is_flattened():
    net = specc.check_text(NETWORKS["conv"])
    assert net.input_shape == (1, 28, 28)
    assert shapes(net) == [(30, 24, 24), (30, 24, 24), (30, 12, 12), (100,), (100,), (10,), (10,)]
    assert net.layers[3].params["W2"] == (30 * 12 * 12, 100)


@pytest.mark.parametrize("layer, out", [
    ("Convolution(8, kernel=3)", (8, 26, 26)),
    ("Convolution(8, kernel=3, pad=1)", (8, 28, 28)),
    ("Convolution(8, kernel=4, stride=2, pad=1)", (8, 14, 14)),
    ("Convolution(8, kernel=28)", (8, 1, 1)),
    ("Pooling", (1, 14, 14)),
    ("Pooling(3, stride=1)", (1, 26, 26)),
    ("Pooling(4, stride=4)", (1, 7, 7)),
    ("Flatten", (784,)),
    ("BatchNorm", (1, 28, 28)),
    ("Dropout(0.3)", (1, 28, 28)),
    ("Sigmoid", (1, 28, 28)),
])
def test_image_layer_shapes(layer, out):
    net = specc.check_text(f"input 1x28x28\n{layer} -> Affine(10) -> SoftmaxWithLoss")
    assert net.layers[0].out_shape == out


def test_batchnorm_on_images_is_per_channel():
    net = specc.check_text("input 3x8x8\nBatchNorm -> Affine(10) -> SoftmaxWithLoss")
    assert net.layers[0].params == {"gamma1": (3,), "beta1": (3,)}
    assert net.layers[0].buffers == {"running_mean1": (3,), "running_var1": (3,)}


def test_affine_with_a_matching_input_size_is_accepted():
    net = specc.check_text("input 784\nAffine(784, 50) -> Affine(50, 10) -> SoftmaxWithLoss")
    assert shapes(net) == [(50,), (10,), (10,)]


def test_affine_input_mismatch_points_at_producer_and_consumer():
    d = one_error("input 784\nAffine(50) -> ReLU -> Affine(100, 10) -> SoftmaxWithLoss")
    assert d.code == "shape"
    assert d.message == "Affine expects 100 inputs per sample, but receives 50"
    assert d.span == Span(2, 30, 2, 33)  # the 100
    assert d.label == "expects (N, 100)"
    (producer,) = d.notes
    assert producer.span == Span(2, 15, 2, 19)  # ReLU
    assert producer.message == "produces (N, 50)"
    assert d.hint == "write `Affine(10)` to let specc infer the input size"


def test_affine_input_mismatch_against_the_declared_input():
    d = one_error("input 784\nAffine(100, 10) -> SoftmaxWithLoss")
    assert d.span == Span(2, 8, 2, 11)
    assert d.notes[0].span == Span(1, 1, 1, 10) and d.notes[0].message == "declared (N, 784)"


def test_affine_input_mismatch_after_an_image_shows_the_product():
    d = one_error("input 1x28x28\nAffine(100, 10) -> SoftmaxWithLoss")
    assert d.message == "Affine expects 100 inputs per sample, but receives 1 x 28 x 28 = 784"


@pytest.mark.parametrize("text, message, hint, arg", [
    ("input 1x28x28\nConvolution(3, kernel=5, stride=2)",
     "Convolution output H is not a whole number: (H + 2*pad - kernel) / stride + 1 = (28 + 2*0 - 5) / 2 + 1 = 12.5",
     "stride 2 must divide H + 2*pad - kernel = 23, and no pad can make it: 2*pad is even and H - kernel = 23 "
     "is odd; this works with kernel=4 or kernel=6, stride=1",
     "stride=2"),
    ("input 1x28x28\nConvolution(3, kernel=30)",
     "Convolution window is larger than its input: kernel 30 > H + 2*pad = 28",
     "the output H is (H + 2*pad - kernel) / stride + 1 = (28 + 2*0 - 30) / 1 + 1 = -1; "
     "use a smaller kernel or more pad", "kernel=30"),
    ("input 1x4x4\nPooling(5)",
     "Pooling window is larger than its input: size 5 > H + 2*pad = 4",
     "the output H is (H + 2*pad - size) / stride + 1 = (4 + 2*0 - 5) / 5 + 1 = 0.8; "
     "use a smaller size or more pad", "5"),
    ("input 1x5x5\nPooling(2)",
     "Pooling output H is not a whole number: (H + 2*pad - size) / stride + 1 = (5 + 2*0 - 2) / 2 + 1 = 2.5",
     "stride 2 must divide H + 2*pad - size = 3, and no pad can make it: 2*pad is even and H - size = 3 is odd; "
     "this works with size=1 or size=3, stride=1", None),
    ("input 1x28x10\nConvolution(3, kernel=12)",
     "Convolution window is larger than its input: kernel 12 > W + 2*pad = 10",
     "the output W is (W + 2*pad - kernel) / stride + 1 = (10 + 2*0 - 12) / 1 + 1 = -1; "
     "use a smaller kernel or more pad", "kernel=12"),
])
def test_sliding_window_sizes_show_the_formula(text, message, hint, arg):
    d = one_error(text + " -> Affine(10) -> SoftmaxWithLoss")
    assert d.code == "shape"
    assert d.message == message
    assert d.hint == hint
    line = text.splitlines()[1]
    if arg is None:  # the stride was not written (it defaults to the size): the layer is marked
        assert (d.span.col, d.span.end_col) == (1, len(line) + 1)
    else:
        assert line[d.span.col - 1:d.span.end_col - 1] == arg


@pytest.mark.parametrize("text, message", [
    ("input 784\nConvolution(3, kernel=3)", "Convolution expects images (N, channels, height, width), "
                                            "but receives (N, 784)"),
    ("input 784\nPooling", "Pooling expects images (N, channels, height, width), but receives (N, 784)"),
    ("input 1x28x28\nConvolution(3, kernel=3) -> Flatten -> Pooling",
     "Pooling expects images (N, channels, height, width), but receives (N, 2028)"),
])
def test_image_layers_need_images(text, message):
    d = one_error(text + " -> Affine(10) -> SoftmaxWithLoss")
    assert d.message == message
    assert d.label == "expects (N, C, H, W)"


def test_a_loss_needs_class_scores():
    d = one_error("input 1x28x28\nConvolution(3, kernel=3) -> SoftmaxWithLoss")
    assert d.message == "SoftmaxWithLoss expects one score per class, (N, classes), but receives (N, 3, 26, 26)"
    assert d.notes[0].message == "produces (N, 3, 26, 26)"


def test_shape_error_inside_a_repeated_group_names_the_copy():
    d = one_error("input 1x8x8\n(Convolution(3, kernel=3) -> Pooling(2)) * 3 -> Affine(10) -> SoftmaxWithLoss")
    assert d.message.startswith("Pooling window is larger than its input")
    producer, expanded = d.notes
    assert producer.message == "produces (N, 3, 1, 1)"
    assert expanded.span == Span(2, 1, 2, 45)
    assert expanded.message == "expanded from here: copy 2 of 3"


def test_shape_error_inside_a_block_names_the_call():
    d = one_error("block D(k) = Convolution(3, kernel=k, stride=2)\ninput 1x28x28\n"
                  "D(4) -> D(4) -> Affine(10) -> SoftmaxWithLoss")
    assert d.span.line == 1  # stride=2, written in the block
    assert d.notes[-1].span == Span(3, 9, 3, 13)
    assert d.notes[-1].message == "expanded from here: D"


# --- network rules ----------------------------------------------------------------------------

def test_no_loss_layer():
    d = one_error("input 784\nAffine(50) -> ReLU -> Affine(10)")
    assert d.code == "no-loss"
    assert d.span == Span(2, 23, 2, 33)
    assert "SoftmaxWithLoss" in d.hint


def test_loss_must_be_last():
    d = one_error("input 784\nAffine(50) -> SoftmaxWithLoss -> Affine(10)")
    assert d.code == "loss-not-last"
    assert d.message == "the loss layer SoftmaxWithLoss must be the last layer"
    assert d.span == Span(2, 15, 2, 30)
    assert d.notes[0].span == Span(2, 34, 2, 44) and d.notes[0].message == "followed by Affine"


def test_exactly_one_loss():
    d = one_error("input 784\nAffine(10) -> MeanSquaredError -> SoftmaxWithLoss")
    assert d.code == "loss-not-last"
    assert d.message == "the loss layer MeanSquaredError must be the last layer"


def test_mean_squared_error_is_a_loss():
    net = specc.check_text("input 4\nAffine(1) -> MSE")
    assert net.loss.spec.type == "MeanSquaredError" and net.loss.spec.written == "MSE"


def test_no_input_shape():
    d = one_error("ReLU -> Affine(10) -> SoftmaxWithLoss")
    assert d.code == "no-input"
    assert d.message == "cannot tell the input shape of the first layer, ReLU"
    assert d.span == Span(1, 1, 1, 5)
    assert "`input 784`" in d.hint


def test_epochs_and_iters_both_set():
    d = one_error("Affine(784, 10) -> SoftmaxWithLoss\ntrain {\n  epochs = 10\n  iters = 1000\n}")
    assert d.code == "conflicting-settings"
    assert d.message == "set either epochs or iters, not both"
    assert d.span == Span(4, 3, 4, 15)
    assert d.notes[0].span == Span(3, 3, 3, 14) and d.notes[0].message == "epochs set here"


def test_learning_rate_set_twice():
    d = one_error("Affine(784, 10) -> SoftmaxWithLoss\ntrain { optimizer = SGD(lr=0.1), lr = 0.1 }")
    assert d.message == "the learning rate is set twice"
    assert d.notes[0].span == Span(2, 25, 2, 31)


def test_learning_rate_from_a_default_is_not_a_conflict():
    specc.check_text("Affine(784, 10) -> SoftmaxWithLoss\ntrain { optimizer = SGD, lr = 0.1 }")


# --- parameter names, as in the book -----------------------------------------------------------

def test_parameter_names_follow_the_book():
    net = specc.check_text(NETWORKS["blocks_readme"])
    names = [name for c in net.layers for name in c.params]
    assert names == ["W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2", "beta2",
                     "W3", "b3", "gamma3", "beta3", "W4", "b4"]
    buffers = [name for c in net.layers for name in c.buffers]
    assert buffers == ["running_mean1", "running_var1", "running_mean2", "running_var2",
                       "running_mean3", "running_var3"]


def test_convolution_and_affine_share_the_w_numbering():
    net = specc.check_text(NETWORKS["conv"])
    params = {name: shape for c in net.layers for name, shape in c.params.items()}
    assert params == {"W1": (30, 1, 5, 5), "b1": (30,), "W2": (4320, 100), "b2": (100,),
                      "W3": (100, 10), "b3": (10,)}


@pytest.mark.parametrize("name, count", [("two_layer", 39_760), ("conv", 433_890), ("blocks", 100_310)])
def test_parameter_counts(name, count):
    assert specc.check_text(NETWORKS[name]).parameter_count == count


# --- every error is reported -----------------------------------------------------------------

def test_every_check_error_in_a_file_is_reported_in_source_order():
    errors = errors_of("input 784\n"
                       "Affine(100, 50) -> ReLU\n"
                       "  -> SoftmaxWithLoss -> Affine(30, 10)\n"
                       "train { epochs = 1, iters = 1 }")
    assert [(d.code, d.span.line) for d in errors] == [
        ("shape", 2), ("loss-not-last", 3), ("conflicting-settings", 4)]


def test_inference_resumes_after_a_layer_with_a_bad_argument():
    errors = errors_of("input 784\nAffine(0) -> ReLU -> Affine(100, 10) -> Affine(20, 10) -> SoftmaxWithLoss")
    assert [d.code for d in errors] == ["bad-arg", "shape"]
    assert errors[1].message == "Affine expects 20 inputs per sample, but receives 10"


def test_a_bad_first_layer_does_not_cascade():
    # Regression: nothing could be inferred, and check crashed with an IndexError.
    (d,) = errors_of("input 784\nAffine(50, init=hee) -> ReLU -> Affine(10) -> SoftmaxWithLoss")
    assert d.code == "bad-arg"
    (d,) = errors_of("input 1x28x28\nConvolution(30) -> ReLU -> Affine(10) -> SoftmaxWithLoss")
    assert d.code == "missing-arg"


def test_train_rules_apply_even_when_a_layer_name_is_wrong():
    # Regression: an unknown layer stopped the epochs/iters rule from being checked.
    errors = errors_of("input 784\nAfine(10) -> SoftmaxWithLoss\ntrain { batch = 0, epochs = 1, iters = 2 }")
    assert [d.code for d in errors] == ["unknown-layer", "bad-setting", "conflicting-settings"]


def test_errors_in_a_repeated_block_are_reported_once():
    errors = errors_of("block D = Afine(10) -> Dropout(2) -> ReLU(1)\ninput 784\nD * 3 -> SoftmaxWithLoss")
    assert [d.code for d in errors] == ["unknown-layer", "bad-arg", "too-many-args"]
    errors = errors_of("block D = Affine(10) -> Dropout(2)\ninput 784\nD * 3 -> SoftmaxWithLoss")
    assert [d.code for d in errors] == ["bad-arg"]


def test_check_on_a_typed_network():
    doc = specc.ir_document(decode_source("t.net", NETWORKS["conv"].encode()))
    net = check(from_json(doc))
    assert net.parameter_count == 433_890
    assert [c.index for c in net.layers] == list(range(7))


def test_shape_errors_are_found_past_an_unknown_layer():
    # regression: an unknown layer used to stop checking before shape inference
    errs = errors_of("input 784\nAffine(100, 10) -> Relu -> Afine(10) -> SoftmaxWithLoss")
    assert [e.code for e in errs] == ["shape", "unknown-layer"]


def test_a_misspelt_loss_is_not_also_reported_as_a_missing_loss():
    errs = errors_of("input 784\nAffine(10) -> SoftmaxWithLos")
    assert [e.code for e in errs] == ["unknown-layer"]


def test_inference_resumes_after_an_unknown_layer_at_an_affine_with_its_input_size():
    errs = errors_of("input 784\nMystery -> Affine(30, 10) -> Affine(5, 10) -> SoftmaxWithLoss")
    assert [e.code for e in errs] == ["unknown-layer", "shape"]
    assert errs[1].span.line == 2 and "expects 5 inputs" in errs[1].message


@pytest.mark.parametrize("length, kernel, stride, pad, works, no_pad", [
    # 24 + 0 - 4 = 20, not a multiple of 3. kernel 3: 21 = 3*7; kernel 6: 18 = 3*6; pad 2: 24 + 4 - 4 = 24 = 3*8;
    # stride 2 and 4 divide 20 (5 would skip input: it is past the window, 4)
    (24, 4, 3, 0, "kernel=3 or kernel=6, pad=2, stride=2 or stride=4", False),
    # 27 - 4 = 23 is odd and 2*pad is even: no pad helps a stride of 2. kernel 3: 24; kernel 5: 22; stride 1
    (27, 4, 2, 0, "kernel=3 or kernel=5, stride=1", True),
    # 6 + 2 - 3 = 5: odd whatever the pad (6 - 3 = 3 is odd). kernel 2: 6; kernel 4: 4; stride 1
    (6, 3, 2, 1, "kernel=2 or kernel=4, stride=1", True),
    # 10 - 3 = 7; an odd stride can be met by pad: pad 1 gives 9 = 3*3. kernel 1: 9; kernel 4: 6; 7 is prime
    (10, 3, 3, 0, "kernel=1 or kernel=4, pad=1, stride=1", False),
    # 9 - 3 = 6, stride 4: pad 1 gives 8 = 4*2; kernel 1: 8; kernel 5: 4; stride 3 divides 6 (6 is past the window)
    (9, 3, 4, 0, "kernel=1 or kernel=5, pad=1, stride=3", False),
    # 4 + 20 - 20 = 4, stride 3: pad 11 gives 6 (pad 8 gives 3*0 too, but 11 is nearer 10); kernel 18: 6; kernel 21: 3
    (4, 20, 3, 10, "kernel=18 or kernel=21, pad=11, stride=2 or stride=4", False),
])
def test_a_stride_that_does_not_fit_suggests_only_changes_that_work(length, kernel, stride, pad, works, no_pad):
    from specc.layers.base import ShapeError
    from specc.layers.windows import sliding_output
    with pytest.raises(ShapeError) as info:
        sliding_output("Convolution", "H", length, kernel, stride, pad, "kernel")
    hint = info.value.hint
    assert hint.endswith("; this works with " + works)
    assert ("no pad can make it" in hint) == no_pad
    assert ("pad=" in works) != no_pad
