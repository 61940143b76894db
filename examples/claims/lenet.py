"""A plugin of the examples' own: LeNet-5 (LeCun et al. 1998), registered as the model `lenet5`.

Named by `plugins: [lenet.py]` in lenet5-student-distils.yaml, so it is imported for that claim only.
The builder takes (in_shape, num_classes) from kd-repro and its own keyword parameters, annotated with
the types of repro.registry, so `repro validate` checks `channels: 0` or `activation: gelu` before
anything trains, as it does for the built-in models.
"""
from typing import Annotated, Literal

from pydantic import Field
from torch import nn

from repro.registry import MODELS, Width


@MODELS.register("lenet5")
def create_lenet5(in_shape, num_classes, channels: Annotated[list[Width], Field(min_length=2, max_length=2)] = (6, 16),
                  activation: Literal["tanh", "relu"] = "tanh"):
    """LeNet-5: two 5x5 conv + 2x2 average-pool stages (6 and 16 channels), then 120-84 fully connected
    layers; 28 px inputs are padded by 2 to the paper's 32."""
    act = nn.Tanh if activation == "tanh" else nn.ReLU
    c1, c2 = channels
    side = (in_shape[-1] + 4 - 4) // 2  # after conv 5x5 (pad 2) and pool 2
    side = (side - 4) // 2              # after conv 5x5 and pool 2
    return nn.Sequential(
        nn.Conv2d(in_shape[0], c1, 5, padding=2), act(), nn.AvgPool2d(2),
        nn.Conv2d(c1, c2, 5), act(), nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(c2 * side * side, 120), act(), nn.Linear(120, 84), act(), nn.Linear(84, num_classes))
