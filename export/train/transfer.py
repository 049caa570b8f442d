"""Resume and transfer learning: start from a checkpoint, freeze the backbone, keep a fresh head (the frozen
backbone's batch norm statistics stay as trained: loop.train_mode)."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from edgepipe.export.train.loop import Recipe, load_checkpoint
from edgepipe.postprocess.errors import UserError


def backbone_of(model: nn.Module) -> nn.Module:
    """The part transfer learning reuses: `backbone` where the model has one, else all but the last layer."""
    if hasattr(model, "backbone"):
        return model.backbone
    raise UserError(f"{type(model).__name__} has no backbone to transfer: pick a YOLO, ResNet or FaceNet model")


def start_model(recipe: Recipe, resume: Path | None, finetune: Path | None, freeze_backbone: bool) -> nn.Module | None:
    """The module training starts from: None (fresh), all weights from resume (the same model), or finetune's
    backbone with a fresh head (frozen when freeze_backbone): finetune may be another model of the family, e.g. a
    trained yolo-small starting a yolo-pose."""
    from edgepipe.export.models import build

    if resume is None and finetune is None:
        if freeze_backbone:
            raise UserError("--freeze-backbone needs --finetune CHECKPOINT (the backbone to keep)")
        return None
    from edgepipe.export.models import REGISTRY

    model = build(recipe.model_name, **recipe.build_kwargs)
    ckpt = load_checkpoint(resume or finetune)
    family = REGISTRY[ckpt["model"]].family if ckpt["model"] in REGISTRY else ""
    if ckpt["model"] != recipe.model_name and (resume is not None or family != REGISTRY[recipe.model_name].family):
        raise UserError(f"checkpoint is a {ckpt['model']!r}, not a {recipe.model_name!r}: pick a matching one (to "
                         "--finetune, one of the same family)")
    if resume is not None:
        try:
            model.load_state_dict(ckpt["state_dict"])
        except RuntimeError as exc:
            raise UserError(f"{resume} does not fit recipe {recipe.name}'s model ({str(exc).splitlines()[0]}): resume "
                             "with the options it was trained with (--dropout)") from None
        return model
    prefix = _prefix(model)
    backbone_state = {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    backbone_of(model).load_state_dict(backbone_state)
    if freeze_backbone:
        for p in backbone_of(model).parameters():
            p.requires_grad_(False)
    return model


def _prefix(model: nn.Module) -> str:
    for name, module in model.named_modules():
        if module is backbone_of(model):
            return name + "."
    raise UserError("the backbone is not a registered submodule")
