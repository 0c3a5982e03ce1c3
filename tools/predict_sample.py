"""The README's main job: generate a sample video and predict it with movinet-a0-base.

Runs `python -m adapter predict` exactly as a user would. The pretrained weights come
from TF Hub (or its cache). Where tfhub.dev cannot be reached and nothing is cached,
the adapter refuses to run (it never falls back to random weights); this script then
says so and, to still show the pipeline end to end, exports the official a0
architecture with *random* weights into .cache/demo-hub and predicts with that,
printing clearly that those labels mean nothing.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapter.core.errors import EXIT_HUB_UNAVAILABLE  # noqa: E402
from tests.videos import write_video  # noqa: E402

SAMPLE = ROOT / "samples" / "sample.mp4"
ANNOTATIONS = ROOT / "samples" / "sample_annotations.json"
HANDLE = "https://tfhub.dev/tensorflow/movinet/a0/base/kinetics-600/classification/3"
DEMO_HUB = ROOT / ".cache" / "demo-hub"


def adapter_command(*args: str, env: dict | None = None) -> int:
    command = [sys.executable, "-m", "adapter", *args]
    print("$", " ".join(command), flush=True)
    return subprocess.call(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def main() -> int:
    SAMPLE.parent.mkdir(exist_ok=True)
    if not SAMPLE.exists():
        # 8 s of a square crossing a textured background, 320x240 at 30 fps.
        write_video(SAMPLE, frames=240, fps=30, width=320, height=240, direction=(3, 1))
    predict = ("predict", str(SAMPLE), "--output", str(ANNOTATIONS))
    code = adapter_command(*predict)
    if code != EXIT_HUB_UNAVAILABLE:
        return code

    print(
        "\n*** tfhub.dev is unreachable and no cached copy exists, so the real weights are not here.\n"
        "*** Running the same pipeline on the official a0 architecture with RANDOM weights:\n"
        "*** the labels below are meaningless; this only shows the pipeline works offline.\n",
        flush=True,
    )
    cached = DEMO_HUB / hashlib.sha1(HANDLE.encode("utf8")).hexdigest()
    if not (cached / "saved_model.pb").is_file():
        code = adapter_command("export-hub", "--model-id", "a0", "--mode", "base", "--output", str(cached))
        if code:
            return code
    code = adapter_command(*predict, env={"TFHUB_CACHE_DIR": str(DEMO_HUB)})
    print("\n*** (random weights: labels are meaningless)", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
