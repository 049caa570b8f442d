"""The demo's model: the small YOLO's checkpoint reused, its interrupted training resumed, or trained anew, and its
ONNX file exported when stale."""

from __future__ import annotations

from pathlib import Path

from edgepipe.export.onnx.export import export_onnx, load_source
from edgepipe.export.train.loop import TrainResult, fit, load_checkpoint, unfinished
from edgepipe.export.train.recipes import make_recipe
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.progress import duration

RECIPE = "yolo-small"


def train_or_reuse(ckpt: Path, data: Path, epochs: int | None, retrain: bool = False, tiny: bool = False) -> Path:
    """The small YOLO's checkpoint, saying which: with retrain, or when ckpt's folder holds no run, trained anew
    into ckpt's folder (epochs: None for the recipe's); a run stopped before its last epoch (its last.pt) resumed
    where it stopped; a finished one reused (its epoch, the run's epochs and its dev mAP printed). tiny: the
    seconds-long configuration; a run of the other configuration is refused, not reused."""
    if epochs is not None and epochs < 1:
        raise UserError(f"--epochs must be >= 1, but got {epochs}")
    last_path = ckpt.parent / "last.pt"
    last = load_checkpoint(last_path) if last_path.is_file() and not retrain else None
    if last is not None:
        same_run(last, last_path, tiny)
        if unfinished(last):
            recipe = make_recipe(RECIPE, data, tiny=tiny)
            recipe.epochs = int(last["epochs"])
            print(f"resuming the interrupted training in {ckpt.parent} after epoch {last['epoch']} of "
                  f"{last['epochs']} (best so far: {best_of(last['best'])}; --retrain to start over)")
            return trained(fit(recipe, ckpt.parent, resume=last))
    if not retrain and ckpt.is_file():
        best = load_checkpoint(ckpt)
        same_run(best, ckpt, tiny)
        print(f"reusing {ckpt}: {reused(best, last)} (--retrain to train again)")
        return ckpt
    recipe = make_recipe(RECIPE, data, tiny=tiny)
    if epochs is not None:
        recipe.epochs = epochs
    print(f"training the small YOLO for {recipe.epochs} epochs into {ckpt.parent}; each epoch's line shows the time "
          "elapsed and left, measured (Ctrl-C stops it: the next run resumes after the last finished epoch)")
    return trained(fit(recipe, ckpt.parent))


def same_run(state: dict, path: Path, tiny: bool) -> None:
    """Refuse a checkpoint of another recipe, or of the other configuration (tiny or full)."""
    if state.get("recipe") != RECIPE:
        raise UserError(f"{path} is a {state.get('recipe')!r} checkpoint, not the demo's {RECIPE!r}: pass another "
                        "--checkpoint, or --retrain to train over it")
    if bool(state.get("tiny", False)) != tiny:
        kind, other = ("a --tiny", "the full") if state.get("tiny") else ("a full", "a --tiny")
        raise UserError(f"{path} is from {kind} run, and this demo asks for {other} one: pass "
                        f"{'--tiny' if state.get('tiny') else 'no --tiny'} to use it, or --retrain to train over it")


def best_of(metrics: dict) -> str:
    """"dev mAP@0.5 M at epoch E" of a checkpoint's best evaluation, or "not evaluated yet"."""
    if "map50" not in metrics:
        return "not evaluated yet"
    return f"dev mAP@0.5 {metrics['map50']:.3f} at epoch {metrics['epoch']}"


def reused(best: dict, last: dict | None) -> str:
    """What a reused best.pt is: its epoch, of how many epochs its finished training ran (from its last.pt, where
    that is recorded), and its dev mAP."""
    total = int(last.get("epochs", 0)) if last is not None else 0
    of = f" of a finished {total}-epoch training" if total else ""
    return f"epoch {best['epoch']}{of}, {best_of(best['metrics'])}"


def trained(result: TrainResult) -> Path:
    """The best checkpoint of a finished training, printed with the time the whole run took and its best epoch."""
    epochs = load_checkpoint(result.out_dir / "last.pt")["epochs"]
    print(f"trained {epochs} epochs in {duration(result.seconds)}: best {best_of(result.best_metrics)}")
    return result.out_dir / "best.pt"


def export_if_stale(ckpt: Path, onnx_path: Path) -> Path:
    """Export ckpt to onnx_path unless onnx_path is newer than ckpt already."""
    if onnx_path.is_file() and onnx_path.stat().st_mtime >= ckpt.stat().st_mtime:
        return onnx_path
    export_onnx(load_source(ckpt), onnx_path)  # logs the file, its size and the parity it passed
    return onnx_path
