# Prebuilt runner image of the movinet-deploy compute config: predictions on a CPU pod.
# Build it with `python tools/build_images.py --image-registry REGISTRY` (from the repository
# root), which tags it with the name a release manifest gives it. The adapter's code is not in
# the image: the platform runs the published DPK's codebase on it.
#
# The base is the public runner base dataloop.json names (tools/build_manifest.py
# PUBLIC_RUNNER_BASES, one exact tag; a test keeps them equal).
FROM hub.dataloop.ai/dtlpy-runner-images/cpu:python3.11_opencv

# Dataloop's runner bases come with the agent's dependencies, HOME=/tmp and
# DL_PYTHON_EXECUTABLE (their Python 3.11); they run as any user, so no USER here.
# Runtime packages only: requirements.txt holds no test pins (requirements-test.txt does).
COPY requirements.txt /opt/movinet/requirements.txt
RUN ${DL_PYTHON_EXECUTABLE} -m pip install --no-cache-dir -r /opt/movinet/requirements.txt

# The presets' pretrained weights and their TF Lite conversions, baked in where the build
# reaches tfhub.dev: a replica's first prediction then neither downloads nor converts
# (9.7 s for a0 base to 63.5 s for a5 stream). --build-arg BAKE_CONVERSIONS=0 builds without
# them (a network without tfhub.dev); replicas then download and convert on first use.
ARG BAKE_CONVERSIONS=1
ENV TFHUB_CACHE_DIR=/opt/movinet/tfhub
COPY adapter /opt/movinet/bake/adapter
COPY tools/bake_conversions.py /opt/movinet/bake/tools/bake_conversions.py
RUN if [ "${BAKE_CONVERSIONS}" = "1" ]; then \
        TF_CPP_MIN_LOG_LEVEL=2 ${DL_PYTHON_EXECUTABLE} /opt/movinet/bake/tools/bake_conversions.py \
        && chmod -R a+rX ${TFHUB_CACHE_DIR}; \
    fi \
    && rm -rf /opt/movinet/bake
