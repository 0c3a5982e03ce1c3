"""Train the same tiny run on one device and mirrored over two logical CPUs; print both results as JSON.

Run as ``python -m tests.distributed_run DATA_DIR OUTPUT_DIR`` in a fresh process: the two
logical CPU devices must be configured before TensorFlow initialises its devices, which a
test process (already running TensorFlow) cannot do. tests/training/test_scaling.py runs it.

Both runs start from the same weights (a random a0 "fine-tuned" on the same labels, so the
whole model carries over), train the head only (frozen backbone: batch norm then uses its
stored statistics, which a 2-clip replica batch and a 4-clip batch share) without dropout
or augmentation, and see the same global batch: batch_size 4 on one device, 2 per device
on two. The mirrored run then resumes from its last checkpoint for a third epoch.
"""

from __future__ import annotations

import json
import os
import sys

import tensorflow as tf


def main(data_root: str, output_root: str) -> dict:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import numpy as np
    import tf_keras

    from adapter.core.config import MovinetConfig
    from adapter.model import network
    from adapter.model.loading import FineTunedInfo, LoadedModel
    from adapter.training.fit import TrainingJob, fine_tune
    from adapter.training.model import classifier_head
    from adapter.training.resume import newest_resume_state, resume_weights_path

    labels = ["left", "right"]
    base = dict(
        model_id="a0",
        imgz=32,
        n_frames=4,
        fps=5,
        num_epochs=2,
        learning_rate=0.001,
        freeze_backbone=True,
        dropout_rate=0.0,
        augment=False,
        mixed_precision=False,
    )
    tf_keras.utils.set_random_seed(7)
    start_model = network.build_classifier("a0", "base", num_classes=len(labels))
    info = FineTunedInfo(model_id="a0", model_mode="base", labels=labels, imgz=32, n_frames=4, fps=5.0)
    start = LoadedModel(model=start_model, labels=labels, source="random a0", finetuned=info)
    head_before = [w.copy() for w in classifier_head(start_model).get_weights()]

    results = {"logical_cpus": len(tf.config.list_logical_devices("CPU"))}
    runs = {
        "one_device": (dict(base, batch_size=4), tf.distribute.get_strategy()),
        "mirrored": (dict(base, batch_size=2), tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])),
    }
    for name, (configuration, strategy) in runs.items():
        job = TrainingJob(
            config=MovinetConfig.from_dict(configuration),
            labels=labels,
            subsets=("train", "validation"),
            starting_model=lambda: start,
            seed=3,
            strategy=strategy,
        )
        result = fine_tune(data_root, os.path.join(output_root, name), job)
        trained = network.build_classifier("a0", "base", num_classes=len(labels))
        trained.load_weights(resume_weights_path(newest_resume_state(os.path.join(output_root, name))))
        head = classifier_head(trained).get_weights()
        results[name] = {
            "replicas": strategy.num_replicas_in_sync,
            "history": result.history,
            "head": [w.tolist() for w in head],
            "head_moved": float(max(np.abs(a - b).max() for a, b in zip(head, head_before))),
        }
    # The mirrored run resumed from its last checkpoint for one more epoch (weights read on one
    # device, copied into the mirrored variables, optimizer state restored).
    state = newest_resume_state(os.path.join(output_root, "mirrored"))
    config, strategy = runs["mirrored"]
    job = TrainingJob(
        config=MovinetConfig.from_dict(dict(config, num_epochs=3)),
        labels=labels,
        subsets=("train", "validation"),
        starting_model=lambda: start,
        seed=3,
        strategy=strategy,
        resume=state,
    )
    resumed = fine_tune(data_root, os.path.join(output_root, "resumed"), job)
    results["resumed"] = {"history": resumed.history, "optimizer_step": state.optimizer_step}
    return results


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    print("RESULT " + json.dumps(main(sys.argv[1], sys.argv[2])))
