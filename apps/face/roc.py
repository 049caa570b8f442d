"""The ROC curve of a face-threshold calibration as a PNG, drawn with OpenCV (no matplotlib on edge boxes)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgepipe.postprocess.calibration import Calibration, Roc
from edgepipe.postprocess.errors import UserError

WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GRID = (225, 225, 225)
CHANCE = (170, 170, 170)
CURVE = (180, 90, 20)  # BGR blue
OPERATING = (40, 40, 220)  # BGR red: the calibrated threshold
EER = (40, 150, 40)  # BGR green: the equal error rate point
FONT = cv2.FONT_HERSHEY_SIMPLEX
TICKS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


class RocPlot:
    """TAR against FAR, both linear in [0, 1], with the chance diagonal, the EER point and the operating point of
    the calibrated threshold. Settings in __init__; draw(roc, calibration) -> (H, W, 3) uint8 BGR image.

    size: (height, width) of the image in px; margins: (left, top, right, bottom) px around the plot area.
    """

    def __init__(self, size: tuple[int, int] = (480, 640), margins: tuple[int, int, int, int] = (70, 50, 30, 60)):
        height, width = size
        left, top, right, bottom = margins
        if min(margins) < 0 or width - left - right < 50 or height - top - bottom < 50:
            raise UserError(f"size {size} minus margins {margins} must leave a plot area of at least 50 x 50 px: "
                             "enlarge size or shrink the margins")
        self.size = (int(height), int(width))
        self.x0, self.x1 = left, width - 1 - right  # pixel columns of FAR 0 and FAR 1
        self.y0, self.y1 = height - 1 - bottom, top  # pixel rows of TAR 0 and TAR 1

    def point(self, far: float, tar: float) -> tuple[int, int]:
        """The (x, y) pixel of a ROC point: far, tar in [0, 1]."""
        return (round(self.x0 + far * (self.x1 - self.x0)), round(self.y0 + tar * (self.y1 - self.y0)))

    def draw(self, roc: Roc, calibration: Calibration) -> np.ndarray:
        """The plot of roc (from postprocess.roc_curve) marked with calibration's points: (H, W, 3) uint8 BGR."""
        image = np.full((*self.size, 3), WHITE, np.uint8)
        self._axes(image)
        cv2.line(image, self.point(0, 0), self.point(1, 1), CHANCE, 1, cv2.LINE_AA)
        curve = np.array([self.point(f, t) for f, t in zip(roc.far, roc.tar, strict=True)], np.int32)  # (T, 2)
        cv2.polylines(image, [curve.reshape(-1, 1, 2)], False, CURVE, 2, cv2.LINE_AA)
        self._marker(image, calibration.far, calibration.tar, OPERATING,
                     f"FAR {calibration.far:.2g} (target {calibration.target_far:g}): "
                     f"d <= {calibration.threshold:.3g}, TAR {calibration.tar:.1%}")
        i = min(int(np.searchsorted(roc.thresholds, calibration.eer_threshold)), len(roc.thresholds) - 1)
        self._marker(image, float(roc.far[i]), float(roc.tar[i]), EER,
                     f"EER {calibration.eer:.1%} at d <= {calibration.eer_threshold:.3g}")
        title = f"ROC: AUC {calibration.auc:.3f}, EER {calibration.eer:.1%}"
        cv2.putText(image, title, (self.x0, self.y1 - 18), FONT, 0.6, BLACK, 1, cv2.LINE_AA)
        return image

    def _axes(self, image: np.ndarray) -> None:
        """Grid, ticks with labels, the plot frame and the axis titles."""
        for v in TICKS:
            cv2.line(image, self.point(v, 0), self.point(v, 1), GRID, 1)
            cv2.line(image, self.point(0, v), self.point(1, v), GRID, 1)
            x, y = self.point(v, 0)
            cv2.putText(image, f"{v:.1f}", (x - 12, y + 18), FONT, 0.4, BLACK, 1, cv2.LINE_AA)
            x, y = self.point(0, v)
            cv2.putText(image, f"{v:.1f}", (x - 30, y + 4), FONT, 0.4, BLACK, 1, cv2.LINE_AA)
        cv2.rectangle(image, self.point(0, 1), self.point(1, 0), BLACK, 1)
        cv2.putText(image, "false accept rate (FAR)", (self.x0 + 120, self.y0 + 42), FONT, 0.5, BLACK, 1, cv2.LINE_AA)
        cv2.putText(image, "TAR", (4, self.y1 + 4), FONT, 0.5, BLACK, 1, cv2.LINE_AA)

    def _marker(self, image: np.ndarray, far: float, tar: float, color: tuple[int, int, int], label: str) -> None:
        """A filled dot at (far, tar) with its label inside the plot area."""
        x, y = self.point(far, tar)
        cv2.circle(image, (x, y), 5, color, -1, cv2.LINE_AA)
        (w, _), _ = cv2.getTextSize(label, FONT, 0.45, 1)
        tx = min(max(x + 8, self.x0 + 4), self.x1 - w - 4)
        ty = min(max(y + 18, self.y1 + 14), self.y0 - 6)
        cv2.putText(image, label, (tx, ty), FONT, 0.45, color, 1, cv2.LINE_AA)


def png_path(path: str | Path) -> Path:
    """path as a Path when it names a .png file; UserError otherwise (checked before any work)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise UserError(f"the ROC image must be a .png file, but got {path.name!r}: pass e.g. roc.png")
    return path


def save_roc(path: str | Path, roc: Roc, calibration: Calibration, plot: RocPlot | None = None) -> Path:
    """Draw roc with RocPlot (default settings unless plot is given) and write it as a PNG at path. Returns path."""
    path = png_path(path)
    if not path.parent.is_dir():
        raise UserError(f"cannot write {path}: folder {path.parent} does not exist")
    image = (plot or RocPlot()).draw(roc, calibration)
    if not cv2.imwrite(str(path), image):
        raise UserError(f"cannot write {path}: OpenCV failed to write the PNG (is the folder writable?)")
    return path
