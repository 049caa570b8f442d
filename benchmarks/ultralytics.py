"""Benchmark against Ultralytics on the same YOLOv8n ONNX file: bare session.run (at the file's own size and
re-targeted), Ultralytics' predictor and `edgepipe detect` (default and --no-rect), interleaved in one run, at 320
(conf 0.25) and 640 (conf 0.001).

Run from the project root: python -m benchmarks.ultralytics [--quick] [--rounds 3] [--weights yolov8n.pt] [--feed]
Ultralytics is never a dependency of edgepipe: the benchmark builds its own virtual environment in runs/ultralytics-
venv the first time (`pip install torch==2.14.1 torchvision==0.29.1 ultralytics onnx onnxruntime onnxslim`, from this
machine's disk and PyPI, a few minutes) and runs Ultralytics there, in a process of its own. YOLOv8n is built from
Ultralytics' own yolov8n.yaml with fresh weights, its batch norm recalibrated on the video's frames so that its
activations have realistic scales and its class layers spread so that a frame has about CANDIDATES boxes over conf
0.25 and thousands over 0.001, as a trained model (or loaded from --weights), and exported by Ultralytics to ONNX at
each size. On a generated 640x480 video it prints, per case, FPS after warm-up and CPU milliseconds per frame (all
threads) of each contender, the boxes NMS is handed, and the ratios edgepipe / bare and edgepipe / Ultralytics
(medians over the rounds). --feed times only how the re-targeted file is fed, interleaved: float input (preprocess
writes the normalized planes) against the same network behind a uint8-input prefix (export --uint8-input: preprocess
only letterboxes, the graph casts and normalizes), with the letterbox's share of a frame.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import onnx

from edgepipe.apps.detect.pipeline import Detector
from edgepipe.apps.detect.service import DetectOptions, detect
from edgepipe.apps.options import ModelOptions
from edgepipe.apps.stream.loop import StreamOptions
from edgepipe.export.data.detection import make_video
from edgepipe.runtime import load, preprocess
from edgepipe.runtime.preprocessing import PreprocessSpec, letterbox
from edgepipe.runtime.retarget import retarget
from edgepipe.runtime.session import Model
from edgepipe.runtime.variants import uint8_input_model

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "runs" / "ultralytics-venv"
PACKAGES = ("torch==2.14.1", "torchvision==0.29.1", "ultralytics", "onnx", "onnxruntime", "onnxslim")
# (input size, conf, boxes per 640x640 frame over 0.001 that the fresh weights are tuned to give)
CASES = ((320, 0.25, 2000), (640, 0.001, 2000), (640, 0.001, 8400))
# bare: session.run at the file's own size (the ceiling as exported); bare rect: at the size edgepipe re-targets it to
CONTENDERS = ("bare", "bare rect", "ultralytics", "edgepipe", "edgepipe --no-rect")
WARMUP = 10  # frames each contender runs before its clock starts
CANDIDATES = 30  # (box, class) pairs over conf 0.25 per 640x640 frame that fresh weights are tuned to give

# Runs in the Ultralytics venv: `export` writes the ONNX files, `predict` times the predictor on the video.
HELPER = textwrap.dedent('''
    import itertools, json, os, resource, sys, time
    os.environ["YOLO_OFFLINE"] = "1"
    from ultralytics import YOLO
    job = json.loads(sys.argv[1])
    if job["do"] == "export":
        import cv2, torch
        torch.manual_seed(0)  # the same fresh weights in every run
        model = YOLO(job["weights"] or "yolov8n.yaml")
        if not job["weights"]:  # fresh weights: recalibrate batch norm on real frames
            net = model.model.train()
            cap, frames = cv2.VideoCapture(job["video"]), []
            while len(frames) < 64 and (got := cap.read())[0]:
                pad = (640 - got[1].shape[0]) // 2  # letterboxed as the predictors see them
                framed = cv2.copyMakeBorder(got[1], pad, pad, 0, 0, cv2.BORDER_CONSTANT, value=(114, 114, 114))
                frames.append(torch.from_numpy(framed[:, :, ::-1].copy()))
            batch = lambda k: torch.stack(frames[k:k + 8]).permute(0, 3, 1, 2).float() / 255
            with torch.no_grad():
                for k in range(0, len(frames), 8):
                    net(batch(k))
            net.eval()
            # Fresh class layers score every box alike (about 1e-5). Center each class's logits, scale each level's
            # by a spread of its own so that about job["boxes"] boxes per frame score over 0.001 (8400: all of them,
            # a model whose every box passes; what NMS gets at conf 0.001), and shift each level's so that about
            # CANDIDATES (box, class) pairs per frame score over 0.25, as a trained model's do. The centered logits
            # have heavy tails, so a level's count falls off a cliff as its spread grows (every box, then a few
            # hundred): one spread for all levels cannot reach the counts between, the levels' own spreads can.
            finals = [branch[-1] for branch in net.model[-1].cv3]
            seen = []
            hooks = [f.register_forward_hook(lambda m, i, o: seen.append(o.detach())) for f in finals]
            with torch.no_grad():
                net(batch(0))
            for h in hooks:
                h.remove()
            centered = [o - o.mean(dim=(0, 2, 3), keepdim=True) for o in seen]  # per class: no class always on
            units = [(c / c.std()).flatten(2) for c in centered]  # per level (frames, 80, cells)
            pairs = sum(u[0].numel() for u in units)  # (box, class) pairs per frame

            def shift_and_boxes(unit, spread):  # one level's unit (frames, 80, cells)
                top = torch.quantile(unit.flatten()[:2_000_000] * spread, 1 - job["candidates"] / pairs)
                shift = -1.0986 - float(top)  # logit(0.25)
                return shift, float(((unit * spread + shift).amax(1) > -6.9068).sum(1).float().mean())  # logit(0.001)

            grid = (3.0, 1.0, 0.3, 0.1, 0.03)  # on a tie the wider spread: most boxes score low, as trained
            table = [{s: shift_and_boxes(u, s) for s in grid} for u in units]
            spreads = min(itertools.product(grid, repeat=len(units)),
                          key=lambda ss: abs(sum(t[s][1] for t, s in zip(table, ss)) - job["boxes"]))
            with torch.no_grad():
                for f, o, c, spread, t in zip(finals, seen, centered, spreads, table):
                    s, shift = spread / float(c.std()), t[spread][0]
                    f.weight.mul_(s)
                    f.bias.sub_(o.mean(dim=(0, 2, 3))).mul_(s).add_(shift)
        for size in job["sizes"]:
            path = model.export(format="onnx", imgsz=size, dynamic=False, opset=17)  # simplified: the default
            os.replace(path, job["out"].format(size=size))
    else:
        model = YOLO(job["model"], task="detect")
        frames, start, cpu = 0, 0.0, 0.0
        for _ in model.predict(job["video"], stream=True, conf=job["conf"], imgsz=job["size"], verbose=False):
            frames += 1
            if frames == job["warmup"]:
                start, cpu = time.perf_counter(), time.process_time()
        seconds, used = time.perf_counter() - start, time.process_time() - cpu
        print(json.dumps({"fps": (frames - job["warmup"]) / seconds, "cpu_ms": used * 1e3 / (frames - job["warmup"])}))
''')


def venv_python() -> Path:
    """The Ultralytics venv's python, made the first time (logged with its time)."""
    python = VENV / "bin" / "python"
    if not python.exists():
        print(f"building {VENV} (pip install {' '.join(PACKAGES)}) ...", flush=True)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PACKAGES], check=True)
        print(f"  built in {time.perf_counter() - t0:.0f} s", flush=True)
    return python


def helper(job: dict) -> str:
    result = subprocess.run([str(venv_python()), "-c", HELPER, json.dumps(job)], capture_output=True, text=True,
                            cwd=VENV.parent)
    if result.returncode != 0:
        raise SystemExit(f"the Ultralytics helper failed:\n{result.stderr[-3000:]}")
    return result.stdout


def cpu_ms_per_frame(t0: float, frames: int) -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime - t0) * 1e3 / max(frames, 1)


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bare(model_path: Path, frames: list[np.ndarray], rect: bool) -> dict:
    """session.run on frames decoded and preprocessed beforehand: the ceiling, at the file's own size, or with rect
    re-targeted to the frames' aspect as edgepipe detect runs it."""
    model = load(model_path, providers="cpu", warmup=0)
    spec = Detector(model, rect=rect).spec
    ready = [preprocess(f, spec).batch for f in frames]
    model = model.at_size(ready[0].shape[2:])
    name = model.inputs[0].name
    for x in ready[:WARMUP]:
        model.session.run(None, {name: x})
    t0, cpu = time.perf_counter(), process_cpu()
    for x in ready[WARMUP:]:
        model.session.run(None, {name: x})
    n = len(ready) - WARMUP
    return {"fps": n / (time.perf_counter() - t0), "cpu_ms": cpu_ms_per_frame(cpu, n)}


def feeds(model_path: Path, frames: list[np.ndarray]) -> dict[str, tuple[Model, PreprocessSpec]]:
    """The file re-targeted to the frames' letterbox as edgepipe detect runs it, fed float32 ("float") and behind
    a uint8-input prefix ("uint8"), each with the spec its preprocess follows. Raises SystemExit if they differ."""
    model = load(model_path, providers="cpu", warmup=0)
    spec = Detector(model).spec
    size = preprocess(frames[0], spec).batch.shape[2:]
    rect = model.at_size(size)
    meta = replace(model.meta, preprocess=replace(model.meta.preprocess, input_size=size))
    proto = uint8_input_model(onnx.load_from_string(retarget(model_path.read_bytes(), size)), meta)
    u8 = load(proto.SerializeToString(), providers="cpu", warmup=0)
    u8_spec = replace(spec, dtype="uint8")
    a, b = rect.run(preprocess(frames[0], spec).batch)[0], u8.run(preprocess(frames[0], u8_spec).batch)[0]
    if np.abs(a - b).max() > 1e-3 * np.abs(a).max():
        raise SystemExit(f"the uint8-input file differs from the float one by {np.abs(a - b).max()}")
    return {"float": (rect, spec), "uint8": (u8, u8_spec)}


def fed(model: Model, spec: PreprocessSpec, frames: list[np.ndarray]) -> dict:
    """Preprocess then session.run, frame by frame: FPS after warm-up and the median preprocess ms."""
    name, pre = model.inputs[0].name, []
    for f in frames[:WARMUP]:
        model.session.run(None, {name: preprocess(f, spec).batch})
    t0 = time.perf_counter()
    for f in frames[WARMUP:]:
        t = time.perf_counter()
        x = preprocess(f, spec).batch
        pre.append((time.perf_counter() - t) * 1e3)
        model.session.run(None, {name: x})
    return {"fps": (len(frames) - WARMUP) / (time.perf_counter() - t0), "pre_ms": float(np.median(pre))}


def letterbox_ms(frames: list[np.ndarray], spec: PreprocessSpec) -> float:
    """Median ms of the letterbox alone (resize and pad): all a preallocated output buffer could save from."""
    times = []
    for f in frames:
        t = time.perf_counter()
        letterbox(f, spec.input_size, spec.pad_value, spec.stride, spec.auto_pad)
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times))


def feed_report(pattern: str, frames: list[np.ndarray], rounds: int) -> None:
    """Print, per input size, float against uint8 feeding of the re-targeted file (medians of interleaved rounds)."""
    for size in sorted({s for s, _, _ in CASES}):
        made = feeds(Path(pattern.format(size=size, boxes=CASES[0][2])), frames)
        runs: dict[str, list[dict]] = {k: [] for k in made}
        for _ in range(rounds):
            for kind, (model, spec) in made.items():
                runs[kind].append(fed(model, spec, frames))
        med = {k: {m: float(np.median([r[m] for r in v])) for m in ("fps", "pre_ms")} for k, v in runs.items()}
        shape = "x".join(map(str, preprocess(frames[0], made["float"][1]).batch.shape[2:]))
        print(f"  {size}, re-targeted to {shape}:", flush=True)
        for kind, v in med.items():
            print(f"    {kind:<8}{v['fps']:7.1f} FPS, preprocess {v['pre_ms']:.2f} ms "
                  f"({v['pre_ms'] * v['fps'] / 10:.1f}% of a frame)", flush=True)
        lb = letterbox_ms(frames, made["float"][1])
        print(f"    uint8 / float {med['uint8']['fps'] / med['float']['fps']:.2f}; the letterbox alone {lb:.2f} ms "
              f"({lb * med['float']['fps'] / 10:.1f}% of a frame)", flush=True)


def candidates(model_path: Path, frames: list[np.ndarray], conf: float) -> float:
    """The median count of boxes per frame whose best class scores over conf (what NMS is handed)."""
    model = load(model_path, providers="cpu", warmup=0)
    return float(np.median([(model(f)[0][0][0, 4:].max(0) > conf).sum() for f in frames[:20]]))


def edgepipe(model_path: Path, video: Path, conf: float, out: Path, rect: bool = True) -> dict:
    """`edgepipe detect --model M --source VIDEO --jsonl OUT --conf C [--no-rect]` in this process (its FPS over
    the run)."""
    cpu = process_cpu()
    summary = detect(DetectOptions(ModelOptions(model_path, "cpu", rect=rect), StreamOptions(str(video), show=False),
                                   conf=conf, jsonl=out)).one()
    return {"fps": summary.fps, "cpu_ms": cpu_ms_per_frame(cpu, summary.frames)}


def ultralytics(model_path: Path, video: Path, conf: float, size: int) -> dict:
    job = {"do": "predict", "model": str(model_path), "video": str(video), "conf": conf, "size": size,
           "warmup": WARMUP}
    return json.loads(helper(job).strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 frames, one round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--weights", help="a YOLOv8n checkpoint of your own (default: fresh weights)")
    parser.add_argument("--feed", action="store_true", help="time only float against uint8 feeding")
    args = parser.parse_args()
    frames_n, rounds = (100, 1) if args.quick else (args.frames, args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        video = out / "bench.mp4"
        make_video(video, n_frames=frames_n, size=(480, 640), seed=0)
        cap, frames = cv2.VideoCapture(str(video)), []
        while (got := cap.read())[0]:
            frames.append(got[1])
        pattern = str(out / "yolov8n-{size}-{boxes}.onnx")
        for boxes in sorted({b for _, _, b in CASES}):
            sizes = sorted({s for s, _, b in CASES if b == boxes})
            helper({"do": "export", "weights": args.weights or "", "video": str(video), "sizes": sizes,
                    "out": pattern.replace("{boxes}", str(boxes)), "candidates": CANDIDATES, "boxes": boxes})
        if args.feed:
            print(f"Feeding the re-targeted YOLOv8n, {frames_n} frames 640x480, CPU, medians of {rounds} interleaved "
                  f"round(s):", flush=True)
            feed_report(pattern, frames, rounds)
            return
        print(f"YOLOv8n ({'fresh weights, batch norm recalibrated' if not args.weights else args.weights}), "
              f"{frames_n}-frame 640x480 video, CPU, medians of {rounds} interleaved round(s):", flush=True)
        for size, conf, boxes in CASES:
            model = Path(pattern.format(size=size, boxes=boxes))
            print(f"  {size}, conf {conf} (weights tuned for {boxes} boxes over 0.001): "
                  f"{candidates(model, frames, conf):.0f} boxes per frame over conf (median)", flush=True)
            runs: dict[str, list[dict]] = {k: [] for k in CONTENDERS}
            for _ in range(rounds):
                runs["bare"].append(bare(model, frames, rect=False))
                runs["bare rect"].append(bare(model, frames, rect=True))
                runs["ultralytics"].append(ultralytics(model, video, conf, size))
                runs["edgepipe"].append(edgepipe(model, video, conf, out / "bench.jsonl"))
                runs["edgepipe --no-rect"].append(edgepipe(model, video, conf, out / "bench.jsonl", rect=False))
            med = {k: {m: float(np.median([r[m] for r in v])) for m in ("fps", "cpu_ms")} for k, v in runs.items()}
            for k, v in med.items():
                print(f"    {k:<20}{v['fps']:7.1f} FPS {v['cpu_ms']:7.1f} CPU ms", flush=True)
            fps = {k: v["fps"] for k, v in med.items()}
            print(f"    edgepipe / bare {fps['edgepipe'] / fps['bare']:.2f}, edgepipe / bare rect "
                  f"{fps['edgepipe'] / fps['bare rect']:.2f}, edgepipe / Ultralytics "
                  f"{fps['edgepipe'] / fps['ultralytics']:.2f}; --no-rect: / bare "
                  f"{fps['edgepipe --no-rect'] / fps['bare']:.2f}, / Ultralytics "
                  f"{fps['edgepipe --no-rect'] / fps['ultralytics']:.2f}", flush=True)


if __name__ == "__main__":
    main()
