# The two commands of the README. Each sets up .venv first: the pinned requirements-test.txt
# (runtime pins plus the test-only ones), then this package (editable), which adds the
# `movinet` command.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup test predict-sample manifest images

$(VENV)/.installed: requirements.txt requirements-test.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-test.txt
	$(PY) -m pip install --quiet -e .
	touch $@

setup: $(VENV)/.installed

# Offline tests; exported fixture models are cached in .cache/test-models between runs.
test: setup
	$(PY) -m pytest

# The main job: predict on a generated sample video with movinet-a0-base.
predict-sample: setup
	$(PY) tools/predict_sample.py

manifest: setup
	$(PY) tools/build_manifest.py

# Build the prebuilt runner images (needs docker): make images IMAGE_REGISTRY=docker.io/you
images:
	$(PYTHON) tools/build_images.py --image-registry $(IMAGE_REGISTRY)
