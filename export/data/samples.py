"""Real sample frames for a model's parity checks and int8 calibration, by what its metadata says it sees."""

from __future__ import annotations

import numpy as np

from edgepipe.runtime.metadata import ModelMeta


def sample_frames(meta: ModelMeta, n: int, seed: int = 0) -> list[np.ndarray]:
    """n frames (uint8, as a camera or file would give them) from the model's own data: digits for the digit
    classifiers, windows and their scenes for the window classifier and its convolutional form, generated scenes for
    detectors, face views for encoders, textured photos for the rest."""
    rng = np.random.default_rng(seed)
    name = meta.model_name
    if name in ("lenet5", "logistic", "shallow", "deep", "softmax"):
        from edgepipe.export.data.digits import load_digits_splits

        split = load_digits_splits()["dev"]
        frames = split.images if name == "lenet5" else (split.x * 255).round().astype(np.uint8).reshape(-1, 8, 8)
        return list(frames[rng.choice(len(frames), n, replace=False)])
    if name in ("window", "window-conv"):
        from edgepipe.export.data.windows import window_detection_split, window_split

        frames = window_split("dev", tiny=True)[0] if name == "window" else window_detection_split("dev", True)[0]
        return [frames[i] for i in rng.choice(len(frames), n, replace=n > len(frames))]
    if meta.task == "detect":
        from edgepipe.export.data.detection import render_scene
        from edgepipe.export.data.faces import identity_splits, make_face_scene

        if name == "yolo-face":
            return [make_face_scene(rng, identity_splits()["dev"].faces)[0] for _ in range(n)]
        return [render_scene(rng).image for _ in range(n)]
    if meta.task in ("embed", "verify"):
        from edgepipe.export.data.faces import face_views, identity_splits

        faces = identity_splits()["dev"].faces
        size = meta.preprocess.input_size[0]
        return [face_views(faces[i % len(faces)], 1, rng, size)[0] for i in range(n)]
    from edgepipe.export.data.backgrounds import random_background

    h, w = meta.preprocess.input_size
    return [random_background(rng, (h, w)) for _ in range(n)]
