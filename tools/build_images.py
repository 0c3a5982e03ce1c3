#!/usr/bin/env python
"""Build (and push) the prebuilt runner images, from docker/*.Dockerfile.

The names and tags come from tools/build_manifest.py (runner_image: registry, name and
the release version), so the images built here are the ones a release manifest written with
the same --image-registry runs. Run from anywhere; the build context is the repository root.

    python tools/build_images.py --image-registry REGISTRY            # docker build both images
    python tools/build_images.py --image-registry REGISTRY --push     # build, then docker push them
    python tools/build_images.py --image-registry REGISTRY --dry-run  # print the docker commands only

Then `python tools/build_manifest.py --image-registry REGISTRY --output dataloop.release.json`
writes the manifest that runs them (dataloop.json runs Dataloop's public bases).
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


def docker_commands(image_registry: str, push: bool = False) -> list[list[str]]:
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
    parser.add_argument(
        "--image-registry",
        required=True,
        metavar="REGISTRY",
        help="a registry Dataloop's pods can pull from (a public one you can push to), e.g. docker.io/you",
    )
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
