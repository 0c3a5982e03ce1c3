"""Fine-tuning in base mode, one module per job.

- pipeline: labelled samples -> tf.data batches of clips (parallel decoding, prefetch).
- model: the label map training uses, the model it starts from, the new head, compile.
- scaling: the tf.distribute strategy (several GPUs: mirrored) and mixed precision.
- balance: class counts, labels without training samples, class weights.
- callbacks: the Keras callbacks of a run (best epoch, history and curves, epoch log, metrics sink).
- checkpoints: checkpoint folders on disk, each written whole (temporary name, then rename) and verified.
- resume: what a checkpoint records, finding the newest usable one, restoring it.
- (the training-curves and confusion-matrix pictures are evaluation.plots.)
- fit: the fit loop. It gets everything explicitly (configuration, label map, starting
  weights, a metrics sink) in a TrainingJob; MovinetAdapter is the only place that knows
  the platform objects and builds that job from them.
- outputs: what a run leaves in output_path, and save() of the fine-tuned model.
(`movinet train`, the same hooks without a platform, is cli/train.py.)
"""
