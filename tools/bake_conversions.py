#!/usr/bin/env python
"""Put every preset's pretrained weights and TF Lite conversion into the caches a replica reads.

The CPU runner image runs this at build time (docker/cpu.Dockerfile), with TFHUB_CACHE_DIR set
to the folder the image keeps: each preset's SavedModel is downloaded there, and its conversion
is written beside it (adapter.runtime.conversion_cache.cache_dirs: <SavedModel>/tflite-cache),
where the deployed model's first prediction finds it instead of converting.

    python tools/bake_conversions.py                        # every preset; exit 1 if any failed
    python tools/bake_conversions.py movinet-a0-base ...    # only these presets
    python tools/bake_conversions.py --skip-unreachable     # presets whose weights cannot be
                                                            # downloaded are reported, not fatal

Where the build cannot reach tfhub.dev, nothing is baked for those presets: the replicas
download and convert on their first prediction, as without this step.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Run as a script, only tools/ is on the path; the adapter package lives beside it.
    sys.path.insert(0, str(ROOT))

from adapter.core.config import MovinetConfig  # noqa: E402
from adapter.core.presets import kinetics_600_labels, preset_configurations  # noqa: E402

logger = logging.getLogger(__name__)


def bake(names: list[str] | None = None, overrides: dict | None = None) -> dict[str, list[tuple[str, str]]]:
    """Resolve each preset's weights and make (or find) its conversion in the caches.

    Args:
        names: preset names (default: every preset).
        overrides: configuration keys set on every preset (tests use small inputs).

    Returns:
        {"baked": [(name, where)], "unreachable": [(name, reason)], "failed": [(name, reason)]}:
        unreachable is a preset whose weights could not be resolved; failed, any other error.
    """
    from adapter.model.hub import HubModelUnavailable
    from adapter.model.loading import load_model
    from adapter.runtime.backend import make_classifier
    from adapter.runtime.conversion_cache import cache_dirs

    presets = preset_configurations()
    unknown = sorted(set(names or ()) - set(presets))
    if unknown:
        raise ValueError(f"no preset named {', '.join(unknown)}; the presets are {', '.join(presets)}")
    report = {"baked": [], "unreachable": [], "failed": []}
    for name in names or list(presets):
        # The runtime the CPU replicas use; a baked conversion is what their first prediction reads.
        config = MovinetConfig.from_dict({**presets[name], **(overrides or {}), "runtime": "tflite"})
        try:
            loaded = load_model(config, None, labels=kinetics_600_labels())
            make_classifier(config, loaded)
        except HubModelUnavailable as err:
            report["unreachable"].append((name, str(err)))
            logger.error("%s: weights unreachable: %s", name, err)
            continue
        except Exception as err:  # one preset's failure must not hide the others'
            report["failed"].append((name, f"{type(err).__name__}: {err}"))
            logger.error("%s: %s: %s", name, type(err).__name__, err)
            continue
        report["baked"].append((name, cache_dirs(loaded)[0]))
        print(f"baked {name} into {cache_dirs(loaded)[0]}", flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    """Bake the presets named (default all).

    Args:
        argv: the arguments (default: sys.argv[1:]).

    Returns:
        0 when every preset was baked (or, with --skip-unreachable, only unreachable ones were
        left out); 1 otherwise.
    """
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="PRESET", help="presets to bake (default: all)")
    parser.add_argument(
        "--skip-unreachable", action="store_true", help="leave out presets whose weights cannot be downloaded"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    report = bake(args.names or None)
    for name, reason in report["unreachable"]:
        print(f"not baked (weights unreachable): {name}: {reason}", file=sys.stderr)
    for name, reason in report["failed"]:
        print(f"not baked (failed): {name}: {reason}", file=sys.stderr)
    if report["failed"] or (report["unreachable"] and not args.skip_unreachable):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
