"""Benchmark of many sources in one detection process against one process per source, interleaved in one run.

Run from the project root: python -m benchmarks.streams [--quick] [--counts 1 2 4 8] [--model M.onnx].
For N generated 640x480 videos (different seeds), each round runs, one after the other:
  one process  `edgepipe detect --source v1 ... --source vN --jsonl ...` (one model, frames batched across sources);
  N processes  N `edgepipe detect --source vK --jsonl ...` started together;
and measures the wall time from start to the last exit (startup included, the same for both), the aggregate FPS
(all frames / wall time), and the peak resident memory summed over the processes (ru_maxrss of each). Prints the
medians over the rounds and the ratios one / separate (goals: FPS >= 1.0x, memory <= 0.5x).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgepipe.export.data.detection import make_video

SMALL = Path(__file__).resolve().parents[1] / "tests" / "assets" / "yolo-small.onnx"


def command(model: Path, videos: list[Path], out: Path) -> list[str]:
    sources = [arg for video in videos for arg in ("--source", str(video))]
    return [sys.executable, "-m", "edgepipe.apps.detect", "--model", str(model), "--provider", "cpu", "--no-show",
            *sources, "--jsonl", str(out), "--json"]


def run_all(commands: list[list[str]]) -> tuple[float, float]:
    """Start the commands together; wait for all. Returns (wall seconds, summed peak RSS in MB)."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in commands]
    rss = 0.0
    for proc in procs:
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"benchmark command failed ({proc.returncode}): {' '.join(proc.args)}")
        rss += usage.ru_maxrss / 1024  # kB on Linux
    return time.perf_counter() - t0, rss


def bench(model: Path, videos: list[Path], frames: int, out: Path, rounds: int) -> None:
    n = len(videos)
    one = [command(model, videos, out / "one.jsonl")]
    separate = [command(model, [v], out / f"sep{k}.jsonl") for k, v in enumerate(videos)]
    results: dict[str, list[tuple[float, float]]] = {"one": [], "separate": []}
    for _ in range(rounds):
        results["one"].append(run_all(one))
        results["separate"].append(run_all(separate))
    med = {k: (float(np.median([w for w, _ in v])), float(np.median([m for _, m in v]))) for k, v in results.items()}
    fps = {k: n * frames / w for k, (w, _) in med.items()}
    print(f"  {n} source(s): one process {fps['one']:7.1f} FPS, {med['one'][1]:7.0f} MB | {n} process(es) "
          f"{fps['separate']:7.1f} FPS, {med['separate'][1]:7.0f} MB | FPS {fps['one'] / fps['separate']:.2f}x, "
          f"memory {med['one'][1] / med['separate'][1]:.2f}x", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter videos, fewer rounds")
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4, 8], help="numbers of sources")
    parser.add_argument("--model", type=Path, default=SMALL, help="the detector (default: the small YOLO asset)")
    parser.add_argument("--rounds", type=int, default=0, help="rounds per count (default 3, 1 with --quick)")
    args = parser.parse_args()
    frames = 100 if args.quick else 300
    rounds = args.rounds or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        videos = [out / f"v{k}.mp4" for k in range(max(args.counts))]
        for k, video in enumerate(videos):
            make_video(video, n_frames=frames, size=(480, 640), seed=100 + k)
        print(f"{args.model.name}, {frames}-frame 640x480 videos, {os.cpu_count()} cores, medians of {rounds} "
              "round(s), wall time from start to the last exit:")
        for n in args.counts:
            bench(args.model, videos[:n], frames, out, rounds)


if __name__ == "__main__":
    main()
