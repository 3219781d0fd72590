"""full_resolution: index 0 of a deep-supervision list, anything else unchanged."""
import torch

from nnssl.deep_supervision import full_resolution


def test_full_resolution_takes_the_first_scale_of_a_list_or_tuple():
    scales = [torch.zeros(2, 3, 8, 8), torch.ones(2, 3, 4, 4)]
    assert full_resolution(scales) is scales[0]
    assert full_resolution(tuple(scales)) is scales[0]


def test_full_resolution_leaves_a_tensor_alone():
    t = torch.arange(6.0).reshape(1, 1, 2, 3)
    assert full_resolution(t) is t
