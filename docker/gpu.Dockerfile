# Prebuilt runner image of the movinet-train-evaluate compute config: training and evaluation
# on a GPU pod. Build it with `python tools/build_images.py --image-registry REGISTRY` (from
# the repository root), which tags it with the name a release manifest gives it.
#
# The base is the public runner base dataloop.json names (tools/build_manifest.py
# PUBLIC_RUNNER_BASES, one exact tag; a test keeps them equal).
FROM hub.dataloop.ai/dtlpy-runner-images/gpu:python3.11_cuda11.8_opencv

# TensorFlow 2.20 needs CUDA 12 and cuDNN 9: its and-cuda extra installs them as pip
# wheels, which TensorFlow loads instead of the base image's CUDA 11.8 (the node's NVIDIA
# driver must support CUDA 12). gpu-constraints.txt pins those wheels. Runtime packages
# only: requirements.txt holds no test pins.
COPY requirements.txt /opt/movinet/requirements.txt
COPY docker/gpu-constraints.txt /opt/movinet/gpu-constraints.txt
RUN ${DL_PYTHON_EXECUTABLE} -m pip install --no-cache-dir -r /opt/movinet/requirements.txt \
    -c /opt/movinet/gpu-constraints.txt "tensorflow[and-cuda]==2.20.0"

# Training and evaluation refuse to run when TensorFlow sees no GPU (adapter/core/devices.py)
# instead of silently taking hours on the CPU.
ENV MOVINET_REQUIRE_GPU=1
