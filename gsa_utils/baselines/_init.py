"""The weight initialisation both CNN baselines use (as torchvision's VGG and ResNet do)."""

from __future__ import annotations

from torch import nn


def init_cnn_weights(module: nn.Module) -> None:
    """Kaiming-normal convolutions (fan-out), unit batch norms, N(0, 0.01) linear layers, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
