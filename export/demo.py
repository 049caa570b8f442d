"""The demo's model: the small YOLO's checkpoint reused or trained, and its ONNX file exported when stale."""

from __future__ import annotations

import time
from pathlib import Path

from edgepipe.export.onnx.export import export_onnx, load_source
from edgepipe.export.train.loop import fit
from edgepipe.export.train.recipes import make_recipe
from edgepipe.postprocess.errors import UserError


def train_or_reuse(ckpt: Path, data: Path, epochs: int | None) -> Path:
    """The small YOLO's checkpoint: ckpt when it exists, else trained into ckpt's folder (the yolo-small recipe)."""
    if ckpt.is_file():
        print(f"reusing {ckpt} (delete it to train again)")
        return ckpt
    recipe = make_recipe("yolo-small", data)
    if epochs is not None:
        if epochs < 1:
            raise UserError(f"--epochs must be >= 1, but got {epochs}")
        recipe.epochs = epochs
    print(f"training the small YOLO for {recipe.epochs} epochs into {ckpt.parent} (about 15 s an epoch on two cores)")
    t0 = time.perf_counter()
    result = fit(recipe, ckpt.parent)
    print(f"trained in {time.perf_counter() - t0:.0f} s: dev mAP@0.5 {result.best_metrics.get('map50', 0):.3f}")
    return result.out_dir / "best.pt"


def export_if_stale(ckpt: Path, onnx_path: Path) -> Path:
    """Export ckpt to onnx_path unless onnx_path is newer than ckpt already."""
    if onnx_path.is_file() and onnx_path.stat().st_mtime >= ckpt.stat().st_mtime:
        return onnx_path
    export_onnx(load_source(ckpt), onnx_path)  # logs the file, its size and the parity it passed
    return onnx_path
