import math

import pytest
import torch

from lv_adapter.modeling.layers import sine_position_embedding


def test_position_code_encodes_y_then_x_in_sines_and_cosines():
    code = sine_position_embedding(3, 5, 8).view(3, 5, 8)
    # dim 8: channels 0-1 are sines of y (frequencies 1 and 1/100), 2-3 their cosines, 4-7 the
    # same for x; the phase of a row is 2 pi (row + 0.5) / height.
    rows = (torch.arange(3) + 0.5) / 3 * 2 * math.pi
    cols = (torch.arange(5) + 0.5) / 5 * 2 * math.pi
    assert torch.allclose(code[:, 2, 0], rows.sin())
    assert torch.allclose(code[:, 2, 2], rows.cos())
    assert torch.allclose(code[1, :, 4], cols.sin())
    assert torch.allclose(code[1, :, 6], cols.cos())
    assert torch.equal(code[:, 0, :4], code[:, 4, :4])  # y channels do not depend on x
    with pytest.raises(ValueError, match="multiple of 4"):
        sine_position_embedding(3, 5, 6)


def test_position_code_is_computed_once_and_usable_in_training_after_inference_mode():
    with torch.inference_mode():
        first = sine_position_embedding(7, 11, 16)
    # Asked for first under inference_mode (evaluation), it must still be a plain tensor: the
    # next training step adds it to tensors that need gradients.
    assert not first.is_inference()
    assert sine_position_embedding(7, 11, 16, device=torch.device("cpu")) is first
    x = torch.zeros(77, 16, requires_grad=True)
    (x + first).sum().backward()
    assert x.grad is not None
