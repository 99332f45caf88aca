"""Per-level 1x1 prediction heads: class logits, box deltas and landmark deltas for each anchor."""

from __future__ import annotations

from torch import Tensor, nn


class DetectionHead(nn.Module):
    """Three 1x1 convs on one pyramid level.

    Returns ``(box (N, H*W*A, 4), cls (N, H*W*A, 2), landmarks (N, H*W*A, 10))`` in the row-major
    cell order, anchors innermost, which is the order of :class:`featherface.detection.PriorBox`.
    """

    def __init__(self, in_channels: int, num_anchors: int, num_classes: int = 2, num_landmarks: int = 5) -> None:
        super().__init__()
        self.num_anchors = num_anchors
        self.cls = nn.Conv2d(in_channels, num_anchors * num_classes, 1)
        self.box = nn.Conv2d(in_channels, num_anchors * 4, 1)
        self.landmarks = nn.Conv2d(in_channels, num_anchors * num_landmarks * 2, 1)

    @staticmethod
    def _flatten(x: Tensor, per_anchor: int) -> Tensor:
        n = x.shape[0]
        return x.permute(0, 2, 3, 1).reshape(n, -1, per_anchor)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        a = self.num_anchors
        return (
            self._flatten(self.box(x), self.box.out_channels // a),
            self._flatten(self.cls(x), self.cls.out_channels // a),
            self._flatten(self.landmarks(x), self.landmarks.out_channels // a),
        )
