"""Query every model of a built repository with the Triton client, using its stored reference inputs.

    python examples/query.py model_repository --url localhost:8000
    python examples/query.py model_repository --url localhost:8001 --protocol grpc

This is plain tritonclient code, the same you would write in an application; `repo-builder validate`
does this and much more (served config, batching, latency).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repository", type=Path)
    parser.add_argument("--url", default="localhost:8000")
    parser.add_argument("--protocol", choices=["http", "grpc"], default="http")
    args = parser.parse_args()

    from tritonclient.utils import np_to_triton_dtype

    if args.protocol == "grpc":
        import tritonclient.grpc as client_lib
    else:
        import tritonclient.http as client_lib  # type: ignore[no-redef]

    client = client_lib.InferenceServerClient(args.url)
    manifest = json.loads((args.repository / "repo_builder_manifest.json").read_text())
    failures = 0
    for name, entry in sorted(manifest["models"].items()):
        reference = entry.get("reference")
        if not reference:
            continue
        data = np.load(args.repository / reference)  # relative to the repository root
        inputs = []
        for key in data.files:
            if not key.startswith("input/"):
                continue
            array = data[key]
            batch = array[:2] if entry["max_batch_size"] > 0 else array  # a batch of two rows
            tensor = client_lib.InferInput(
                key.removeprefix("input/"), list(batch.shape), np_to_triton_dtype(batch.dtype)
            )
            tensor.set_data_from_numpy(batch)
            inputs.append(tensor)
        result = client.infer(name, inputs)
        for key in data.files:
            if not key.startswith("output/"):
                continue
            expected = data[key][:2] if entry["max_batch_size"] > 0 else data[key]
            got = result.as_numpy(key.removeprefix("output/"))
            error = float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64))))
            tol = entry["tolerance"]
            ok = error <= tol["atol"] + tol["rtol"] * float(np.max(np.abs(expected)))
            failures += not ok
            print(
                f"{name:24s} {key.removeprefix('output/'):16s} shape={list(got.shape)} "
                f"max|diff|={error:.2e} {'ok' if ok else 'MISMATCH'}"
            )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
