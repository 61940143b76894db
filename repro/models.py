"""Models, built by name from the MODELS registry: `create_model(name, in_shape, num_classes, **params)`."""
from __future__ import annotations

import math

import torch
from torch import nn

from .registry import MODELS


def create_model(name: str, in_shape: tuple[int, ...], num_classes: int, **params) -> nn.Module:
    return MODELS.get(name)(in_shape=in_shape, num_classes=num_classes, **params)


class MLP(nn.Module):
    """Fully connected ReLU net on flattened inputs, with dropout on the input and after each hidden layer."""

    def __init__(self, in_features: int, hidden: list[int], num_classes: int,
                 input_dropout: float = 0.0, hidden_dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten(), nn.Dropout(input_dropout)]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(hidden_dropout)]
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@MODELS.register("mlp")
def create_mlp(in_shape, num_classes, hidden, input_dropout=0.0, hidden_dropout=0.0):
    return MLP(math.prod(in_shape), list(hidden), num_classes, input_dropout, hidden_dropout)
