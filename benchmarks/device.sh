#!/usr/bin/env bash
# Run a command on the GPU machine with edgepipe importable: the four folders mapped to the `edgepipe` namespace
# (as pyproject.toml maps them when installed) and onnxruntime-gpu from /tmp/ortgpu (../shared/GPU.md) first.
# Usage, from the project root: bash benchmarks/device.sh python3 -m benchmarks.gpu_streams
set -euo pipefail
ns=$(mktemp -d)
mkdir -p "$ns/edgepipe"
for floor in postprocess runtime export apps; do
    ln -s "$PWD/$floor" "$ns/edgepipe/$floor"
done
export PYTHONPATH="/tmp/ortgpu:$ns:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "$@"
