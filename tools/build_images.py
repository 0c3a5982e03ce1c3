#!/usr/bin/env python
"""Build (and push) the runner images dataloop.json names, from docker/*.Dockerfile.

The names and tags come from tools/build_manifest.py (runner_image: registry, name and
the release version), so the images built here are the ones the manifest's computeConfigs
run. Run from anywhere; the build context is the repository root.

    python tools/build_images.py                 # docker build both images
    python tools/build_images.py --push          # build, then docker push them
    python tools/build_images.py --image-registry REGISTRY --push   # your own registry
    python tools/build_images.py --dry-run       # print the docker commands only
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))

import build_manifest  # noqa: E402

ROOT = build_manifest.ROOT


def docker_commands(image_registry: str = build_manifest.IMAGE_REGISTRY, push: bool = False) -> list[list[str]]:
    """The docker commands that build (and push) every runner image.

    Args:
        image_registry: the registry path the images are tagged with.
        push: also push each image after building it.

    Returns:
        The commands, each an argument list, to run from the repository root.
    """
    commands = []
    for variant, dockerfile in build_manifest.DOCKERFILES.items():
        image = build_manifest.runner_image(variant, image_registry)
        commands.append(["docker", "build", "--file", dockerfile, "--tag", image, "."])
        if push:
            commands.append(["docker", "push", image])
    return commands


def main(argv: list[str] | None = None) -> int:
    """Run (or print) the docker commands.

    Args:
        argv: the arguments (default: sys.argv[1:]).

    Returns:
        0, or the exit code of the first docker command that failed.
    """
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--image-registry", default=build_manifest.IMAGE_REGISTRY, metavar="REGISTRY")
    parser.add_argument("--push", action="store_true", help="push the images after building them")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    for command in docker_commands(args.image_registry, args.push):
        print("$", shlex.join(command), flush=True)
        if args.dry_run:
            continue
        code = subprocess.call(command, cwd=ROOT)
        if code:
            print(f"error: {shlex.join(command)} exited with {code}", file=sys.stderr)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
