"""The variants report of `edgepipe export` and `edgepipe quantize`: one row per file (size, p50 latency measured
interleaved, accuracy, drop against fp32, written or refused), printed, and saved as JSON and Markdown."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgepipe.runtime.bench import measure
from edgepipe.runtime.files import write_atomic
from edgepipe.runtime.preprocessing import preprocess
from edgepipe.runtime.session import load

COLUMNS = ("variant", "file", "MB", "p50 ms", "x fp32", "metric", "value", "drop", "parity", "result")


@dataclass(frozen=True)
class Variant:
    """One file of the report.

    kind: "fp32" (the model the others derive from), "fp16", "int8", "nms" or "uint8". written: whether it was
    written at path (a refused one was not). over_budget: its accuracy dropped more than the budget, or its parity
    failed (written anyway only with --keep-failed). parity: max |difference| of its output to its reference
    (fp32: PyTorch; fp16: relative to fp32; uint8: to fp32), None where not comparable. p50_ms: batch 1, measured
    interleaved with the other files. metric, value: what was measured on the held-out data (or the agreement with
    fp32's detections), reference: the fp32 file's value measured the same way, drop: reference - value.
    note: why it was refused, or what it is. input: the command's own input file (quantize), never rewritten.
    """

    kind: str
    path: Path
    size_bytes: int
    written: bool
    over_budget: bool
    parity: float | None
    p50_ms: float | None
    metric: str
    value: float | None
    reference: float | None
    drop: float | None
    seconds: float
    note: str = ""
    input: bool = False

    @property
    def size_mb(self) -> float:
        return self.size_bytes / 2**20

    @property
    def status(self) -> str:
        if self.input:
            return "input"
        if not self.written:
            return "refused"
        return "kept over budget" if self.over_budget else "written"


@dataclass(frozen=True)
class VariantReport:
    """name: the model; opset; data: what the accuracy was measured on; budget: the rule a variant must meet;
    provider: what ran the latency; files: the fp32 file first; saved: the JSON and Markdown copies written."""

    name: str
    opset: int
    data: str
    budget: str
    provider: str
    files: tuple[Variant, ...]
    saved: tuple[Path, ...] = ()

    @property
    def model(self) -> Variant:
        """The fp32 model, the file the variants derive from."""
        return self.files[0]

    @property
    def refused(self) -> list[Variant]:
        """The variants over budget, written or not."""
        return [f for f in self.files if f.over_budget]

    def rows(self) -> list[list[str]]:
        """The table's cells, one row per file, in COLUMNS order."""
        base = self.model.p50_ms
        rows = []
        for f in self.files:
            speed = "-" if f.p50_ms is None or base is None else f"{base / f.p50_ms:.2f}x"
            rows.append([f.kind, f.path.name, f"{f.size_mb:.2f}", _num(f.p50_ms, 3), speed, f.metric or "-",
                         _num(f.value, 4), _num(f.drop, 4), "-" if f.parity is None else f"{f.parity:.1e}",
                         f.status + (f": {f.note}" if f.note else "")])
        return rows

    def lines(self) -> list[str]:
        """The printed report: a header, the table, the budget, and where it was saved."""
        cells = [list(COLUMNS), *self.rows()]
        widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS) - 1)]
        table = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1] for r in cells]
        lines = [f"{self.name}, opset {self.opset}: accuracy on {self.data}; p50 latency batch 1 on {self.provider}, "
                 "measured interleaved", *table, f"budget: {self.budget}"]
        return [*lines, f"report: {', '.join(str(p) for p in self.saved)}"] if self.saved else lines

    def markdown(self) -> str:
        """The report as a Markdown table with its header lines."""
        head = f"Accuracy on {self.data}; p50 latency at batch 1 on {self.provider}, measured interleaved."
        table = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
        table += ["| " + " | ".join(r) + " |" for r in self.rows()]
        return "\n".join([f"# {self.name}, opset {self.opset}", "", head, "", *table, "",
                          f"Budget: {self.budget}.", ""])

    def as_dict(self) -> dict:
        """The report as JSON-ready data."""
        files = [{**asdict(f), "path": str(f.path), "status": f.status} for f in self.files]
        return {"name": self.name, "opset": self.opset, "data": self.data, "budget": self.budget,
                "provider": self.provider, "files": files}

    def save(self, stem: Path) -> VariantReport:
        """Write STEM.report.json and STEM.report.md; returns the report with their paths in saved."""
        json_path, md_path = Path(f"{stem}.report.json"), Path(f"{stem}.report.md")
        write_atomic(json_path, (json.dumps(self.as_dict(), indent=2) + "\n").encode())
        write_atomic(md_path, self.markdown().encode())
        return VariantReport(self.name, self.opset, self.data, self.budget, self.provider, self.files,
                             (json_path, md_path))


def latencies(paths: dict[str, Path], frames: Sequence[np.ndarray], runs: int, provider: str = "auto",
              progress: bool = True, inputs: Sequence[np.ndarray] = ()) -> tuple[dict[str, float], str]:
    """p50 ms at batch 1 of each model on the first of frames (each preprocessed as its metadata says), or on the
    first row of each of inputs (a model of several inputs: the Siamese network and its head), measured
    interleaved; and the provider that ran them. The sessions' idle threads sleep instead of spinning: a spinning
    session steals the cores from the next one timed (docs/benchmarks.md, "Interleaved sessions")."""
    models = {kind: load(path, providers=provider, warmup=0, spin=False) for kind, path in paths.items()}
    fns = {}
    for kind, model in models.items():
        batches = [x[:1] for x in inputs] if inputs else [preprocess(frames[0], model.spec).batch]
        fns[kind] = lambda m=model, b=batches: m.run(*b)
    timed = measure(fns, 1, runs, max(1, runs // 10), progress=progress)
    return {kind: t.p50 for kind, t in timed.items()}, next(iter(models.values())).providers[0]


def _num(value: float | None, digits: int) -> str:
    """value with digits decimals ("-" for None); a value that rounds to zero shows as 0, never -0."""
    return "-" if value is None else f"{round(value, digits) + 0.0:.{digits}f}"
