"""The numbers the README and docs/ quote where they can drift from the code (issue 18): data set sizes, option
defaults, thresholds, epochs, the demo's video. Each is parsed out of the text and compared with the constant the
code uses; a claim whose sentence was reworded so that its pattern no longer matches fails too."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from edgepipe.apps.demo import OBJECTS, DemoOptions
from edgepipe.apps.detect.service import DetectOptions
from edgepipe.apps.face.kiosk import Decider
from edgepipe.apps.face.pipeline import MIN_FACE_PX
from edgepipe.apps.quantize import QuantizeOptions
from edgepipe.export.data.detection import CROSSING_SIDES, CROSSING_SPEED, VIDEO_SIDES, DatasetConfig
from edgepipe.export.options import RECIPE_EPOCHS, ExportOptions
from tests.test_layers import REPO

NUMBER = r"([\d,]+(?:\.\d+)?)"  # 3,000 or 0.25


def text(doc: str) -> str:
    """A doc's text with its line breaks and runs of spaces as one space (sentences wrap anywhere)."""
    return " ".join((REPO / doc).read_text(encoding="utf-8").split())


def value(number: str) -> float:
    return float(number.replace(",", ""))


def digits_sizes() -> tuple[int, ...]:
    from edgepipe.export.data.digits import load_digits_splits

    splits = load_digits_splits()
    return tuple(len(splits[s].y) for s in ("train", "dev", "test"))


SHAPES = (DatasetConfig.n_train, DatasetConfig.n_dev, DatasetConfig.n_test)

# (doc, pattern with one group per number, what the code says, in the same order)
CLAIMS: list[tuple[str, str, Callable[[], tuple[float, ...]]]] = [
    ("docs/data.md", rf"Default \(`DatasetConfig\(\)`\): {NUMBER} train, {NUMBER} dev, {NUMBER} test images of "
     rf"{NUMBER}x{NUMBER}", lambda: (*SHAPES, *DatasetConfig.image_size)),
    ("docs/training.md", rf"\| `yolo-small` \| course YOLO, {NUMBER}x{NUMBER} [^|]*\| {NUMBER} / {NUMBER} / {NUMBER} "
     "generated scenes", lambda: (*DatasetConfig.image_size, *SHAPES)),
    ("docs/training.md", rf"\| `lenet5` \| [^|]*\| digits {NUMBER} / {NUMBER} / {NUMBER}", digits_sizes),
    ("docs/data.md", rf"\| train \| {NUMBER} \|.*?\| dev \| {NUMBER} \|.*?\| test \| {NUMBER} \|", digits_sizes),
    ("docs/training.md", rf"\| `lenet5` \| {NUMBER} \|", lambda: (RECIPE_EPOCHS["lenet5"],)),
    ("docs/training.md", rf"\| `yolo-small` \| {NUMBER} \|", lambda: (RECIPE_EPOCHS["yolo-small"],)),
    ("docs/training.md", rf"\| `yolo-face` \| {NUMBER} \|", lambda: (RECIPE_EPOCHS["yolo-face"],)),
    ("docs/training.md", rf"\| `facenet` \| {NUMBER} x", lambda: (RECIPE_EPOCHS["facenet"],)),
    ("docs/export.md", rf"`runs/yolo-small/best.pt`, {NUMBER} epochs", lambda: (RECIPE_EPOCHS["yolo-small"],)),
    ("docs/detect.md", rf"`--conf {NUMBER}`, `--iou {NUMBER}`, `--max-det {NUMBER}`",
     lambda: (DetectOptions.conf, DetectOptions.iou, DetectOptions.max_det)),
    ("docs/export.md", rf"\[--holdout {NUMBER}\] \[--conf {NUMBER}\] \[--iou {NUMBER}\] \[--min-agreement {NUMBER}\]",
     lambda: (QuantizeOptions.holdout, QuantizeOptions.conf, QuantizeOptions.iou, QuantizeOptions.min_agreement)),
    ("docs/export.md", rf"\[--max-drop {NUMBER}\] \[--keep-failed\] \[--split test\] \[--bench-runs {NUMBER}\]",
     lambda: (ExportOptions.max_drop, ExportOptions.bench_runs)),
    ("docs/kiosk.md", rf"\(default {NUMBER} px for both, `MIN_FACE_PX`", lambda: (MIN_FACE_PX,)),
    ("docs/benchmarks.md", rf"kiosk `--min-face` {NUMBER}", lambda: (MIN_FACE_PX,)),
    ("docs/kiosk.md", rf"`--confirm` consecutive frames \(default {NUMBER}\)", lambda: (Decider.confirm,)),
    ("docs/kiosk.md", rf"`--cooldown` seconds without a face \(default {NUMBER}\)", lambda: (Decider.cooldown,)),
    ("docs/detect.md", rf"The demo video \(`--frames {NUMBER}`, [^)]*`--seed {NUMBER}`\) is `make_video\(\.\.\., "
     rf"n_objects={NUMBER}, crossing=True\)`", lambda: (DemoOptions.frames, DemoOptions.seed, OBJECTS)),
    ("docs/data.md", rf"`VIDEO_SIDES`, {NUMBER}-{NUMBER} px", lambda: VIDEO_SIDES),
    ("docs/data.md", rf"`CROSSING_SIDES` \({NUMBER}-{NUMBER} px\) at `CROSSING_SPEED` \({NUMBER}-{NUMBER} px per frame",
     lambda: (*CROSSING_SIDES, *CROSSING_SPEED)),
]


@pytest.mark.parametrize(("doc", "pattern", "code"), CLAIMS, ids=[f"{c[0]}:{c[1][:30]}" for c in CLAIMS])
def test_the_docs_quote_the_codes_numbers(doc, pattern, code):
    found = re.findall(pattern, text(doc))
    assert found, f"{doc} no longer says {pattern!r}: update the claim here with the text"
    want = tuple(float(v) for v in code())
    for numbers in found:
        numbers = (numbers,) if isinstance(numbers, str) else numbers
        assert tuple(value(n) for n in numbers) == want, f"{doc} says {numbers}, the code {want}"


def test_every_data_set_size_the_docs_quote_is_the_codes():
    """Any "N train, N dev, N test" triple, or "N / N / N" of images or scenes, in the README and docs/ is one of the
    code's splits."""
    from edgepipe.export.data.faces import SPLITS as IDENTITIES
    from edgepipe.export.data.windows import WINDOW_SCENES

    windows = (WINDOW_SCENES.n_train, WINDOW_SCENES.n_dev, WINDOW_SCENES.n_test)
    known = {SHAPES, digits_sizes(), tuple(IDENTITIES[s] for s in ("train", "dev", "test")), windows}
    docs = ["README.md", *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md"))]
    triples = [(doc, t) for doc in docs
               for t in re.findall(rf"{NUMBER} train, {NUMBER} dev, {NUMBER} test|(?:digits|split:?) {NUMBER} / "
                                   rf"{NUMBER} / {NUMBER}|{NUMBER} / {NUMBER} / {NUMBER} (?:generated|images|scenes)",
                                   text(doc))]
    assert len(triples) >= 3
    for doc, groups in triples:
        triple = tuple(int(value(n)) for n in groups if n)  # the alternative that matched
        assert triple in known, (doc, triple)
