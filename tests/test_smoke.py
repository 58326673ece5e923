"""A first end-to-end check; the stage tests live beside it."""
import specc


def test_two_layer_net_has_the_books_parameter_count():
    net = specc.check_text("Affine(784,50) -> ReLU -> Affine(50,10) -> SoftmaxWithLoss")
    assert net.parameter_count == 39_760
