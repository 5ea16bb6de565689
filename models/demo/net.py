"""The demo CNN: three conv blocks, global max+mean pooling, one logit.

Max pooling over space reads "how conspicuous is the brightest lesion-like spot", which is what
the simulated vendor's evidence is drawn as; the mean keeps the global (scanner) context. The last
conv block (``features.10``) is the Grad-CAM layer.
"""

from __future__ import annotations

import torch
from torch import nn


class DemoCNN(nn.Module):
    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1),
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1),
            nn.BatchNorm2d(2 * w),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1),
            nn.BatchNorm2d(2 * w),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(4 * w, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        pooled = torch.cat([f.amax(dim=(2, 3)), f.mean(dim=(2, 3))], dim=1)
        return self.head(pooled)[:, 0]
