# Runner image of the movinet-deploy compute config: predictions on a CPU pod.
# Build it with `python tools/build_images.py` (from the repository root), which tags it
# with the name dataloop.json gives it. The code is not in the image: the platform runs the
# published DPK's codebase on it.
FROM hub.dataloop.ai/dtlpy-runner-images/cpu:python3.11_opencv

# Dataloop's runner bases come with the agent's dependencies, HOME=/tmp and
# DL_PYTHON_EXECUTABLE (their Python 3.11); they run as any user, so no USER here.
COPY requirements.txt /opt/movinet/requirements.txt
RUN ${DL_PYTHON_EXECUTABLE} -m pip install --no-cache-dir -r /opt/movinet/requirements.txt
