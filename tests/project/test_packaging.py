"""The package as it ships: pyproject pins, an installed copy run from another folder, the
runner images' Dockerfiles and names, and the folder dpks.publish packs.

No docker engine and no network: the Dockerfiles are parsed, the package is built from a
copy of its sources with the build backend already installed.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pathspec
import pytest
from dockerfile_parse import DockerfileParser

import adapter
from adapter.core.devices import REQUIRE_GPU_ENV
from adapter.core.presets import kinetics_600_labels
from tests.conftest import ROOT, set_options
from tests.videos import write_video


def _load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_manifest = _load_tool("build_manifest")
build_images = _load_tool("build_images")

TEST_ONLY = {"pytest", "pytest-xdist", "dockerfile-parse", "scikit-video"}


def requirement_lines(name: str = "requirements.txt") -> list[str]:
    lines = (ROOT / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


# --- pyproject.toml and requirements.txt ----------------------------------------------------


def test_pyproject_pins_are_the_runtime_and_test_requirements():
    project = pyproject()["project"]
    runtime = project["dependencies"]
    test_extra = project["optional-dependencies"]["test"]
    requirements = requirement_lines()
    test_requirements = requirement_lines("requirements-test.txt")

    assert all("==" in line for line in requirements), "requirements.txt pins every package"
    assert len(set(requirements)) == len(requirements)
    # requirements.txt ships in the codebase, and the runner installs it at service start:
    # runtime packages only. The test pins come on top of it, for make test and CI.
    assert sorted(runtime) == sorted(requirements)
    assert test_requirements[0] == "-r requirements.txt"
    assert all("==" in line for line in test_requirements[1:])
    assert sorted(test_extra) == sorted(test_requirements[1:])
    assert {line.split("==")[0] for line in test_extra} == TEST_ONLY
    assert not {line.split("==")[0] for line in requirements} & TEST_ONLY
    # PyAV decodes videos and dtlpymetrics scores evaluate_model: both are runtime packages.
    assert {"av", "dtlpymetrics", "tensorflow", "dtlpy"} <= {line.split("==")[0] for line in runtime}


def test_one_version_number_for_package_manifest_and_images():
    config = pyproject()
    assert config["project"]["dynamic"] == ["version"]
    assert config["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "adapter.__version__"}
    manifest = json.loads((ROOT / "dataloop.json").read_text())
    assert manifest["version"] == adapter.__version__
    release = build_manifest.build_manifest(image_registry="docker.io/someone")
    for compute_config in release["components"]["computeConfigs"]:
        assert f":{adapter.__version__}-" in compute_config["runtime"]["runnerImage"]


def test_console_script_is_the_cli_main():
    assert pyproject()["project"]["scripts"] == {"movinet": "adapter.cli:main"}


# --- an installed copy ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """`pip install .` of a copy of the sources (the repository stays clean) into a target folder."""
    source = tmp_path_factory.mktemp("source")
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copy(ROOT / "README.md", source)
    shutil.copytree(ROOT / "adapter", source / "adapter", ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path_factory.mktemp("site")
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--target",
        str(target),
        str(source),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return target


def run_installed(installed: Path, command: list[str], cwd: Path, env_extra=None):
    # Only the installed copy is importable: the repository is neither the cwd nor on the path.
    env = {**os.environ, "PYTHONPATH": str(installed), **(env_extra or {})}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_installed_console_script_and_module_run_from_another_folder(installed, tmp_path):
    script = installed / "bin" / "movinet"
    assert script.is_file()

    help_text = run_installed(installed, [str(script), "--help"], tmp_path)
    assert help_text.returncode == 0, help_text.stderr
    assert help_text.stdout.startswith("usage: movinet")
    assert all(command in help_text.stdout for command in ("predict", "train", "export-hub"))

    module_help = run_installed(installed, [sys.executable, "-m", "adapter", "predict", "--help"], tmp_path)
    assert module_help.returncode == 0, module_help.stderr
    assert module_help.stdout.startswith("usage: python -m adapter predict")

    # The model names come from the installed package's presets, not from a dataloop.json.
    unknown = run_installed(installed, [str(script), "predict", "x.mp4", "--model", "movinet-z9-base"], tmp_path)
    assert unknown.returncode == 2
    assert "movinet-a1-stream" in unknown.stderr and "movinet-a5-base" in unknown.stderr


def test_installed_package_finds_its_labels_and_presets(installed, tmp_path):
    probe = (
        "import json, adapter, adapter.core.presets as p; "
        "m = p.preset_model('movinet-a1-stream'); "
        "print(json.dumps({'file': adapter.__file__, 'labels': p.kinetics_600_labels(), 'model': m}))"
    )
    result = run_installed(installed, [sys.executable, "-c", probe], tmp_path)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)

    assert Path(found["file"]).resolve().is_relative_to(installed.resolve())
    assert found["labels"] == kinetics_600_labels()
    assert found["model"]["configuration"]["model_id"] == "a1"
    assert found["model"]["configuration"]["model_mode"] == "stream"
    assert found["model"]["labels"] == kinetics_600_labels()


def test_installed_cli_predicts_with_the_preset_labels(installed, hub_cache, tmp_path):
    video = write_video(tmp_path / "walk.mp4", frames=12, fps=10)
    output = tmp_path / "annotations.json"

    result = run_installed(
        installed,
        [
            str(installed / "bin" / "movinet"),
            "predict",
            video,
            "--model",
            "movinet-a0-stream",
            *set_options(imgz=48, n_frames=4),
            "--output",
            str(output),
        ],
        tmp_path,
        env_extra={"TFHUB_CACHE_DIR": str(hub_cache)},
    )

    assert result.returncode == 0, result.stderr[-3000:]
    (annotations,) = json.loads(output.read_text()).values()
    # The preset ships its labels only as the model's labels; they must reach the annotations.
    assert len(annotations) == 3
    assert {annotation["label"] for annotation in annotations} <= set(kinetics_600_labels())


# --- runner images --------------------------------------------------------------------------


def parse_dockerfile(relative: str) -> DockerfileParser:
    # The parser reads its file lazily, on every property; give it the bytes.
    return DockerfileParser(fileobj=io.BytesIO((ROOT / relative).read_bytes()))


def _copied_requirements(parser: DockerfileParser) -> str:
    """Where the Dockerfile COPYs requirements.txt to."""
    for instruction in parser.structure:
        if instruction["instruction"] == "COPY":
            *sources, destination = instruction["value"].split()
            if sources == ["requirements.txt"]:
                return destination
    raise AssertionError("the Dockerfile does not COPY requirements.txt")


def _runs(parser: DockerfileParser) -> list[str]:
    return [instruction["value"] for instruction in parser.structure if instruction["instruction"] == "RUN"]


@pytest.mark.parametrize("variant", sorted(build_manifest.DOCKERFILES))
def test_dockerfile_installs_the_runtime_requirements_on_the_pinned_public_base(variant):
    parser = parse_dockerfile(build_manifest.DOCKERFILES[variant])

    # The prebuilt image starts from the very base the default manifest runs, one exact tag.
    assert parser.baseimage == build_manifest.PUBLIC_RUNNER_BASES[variant]
    assert parser.baseimage.startswith(f"hub.dataloop.ai/dtlpy-runner-images/{variant}:python3.11_")
    tag = parser.baseimage.rsplit(":", 1)[1]
    assert tag != "latest" and "@sha256:" not in tag
    destination = _copied_requirements(parser)
    runs = _runs(parser)
    assert any("pip install" in run and f"-r {destination}" in run for run in runs), runs
    # No test package reaches a production image: not from the requirements, not by name.
    installed = " ".join(runs) + " " + " ".join(requirement_lines())
    assert not [name for name in TEST_ONLY if name in installed]
    copied = [i["value"] for i in parser.structure if i["instruction"] == "COPY"]
    assert not [value for value in copied if "requirements-test" in value]


def test_gpu_image_has_cuda_tensorflow_pinned_by_constraints_and_requires_the_gpu(monkeypatch):
    from importlib import metadata

    from packaging.requirements import Requirement

    gpu, cpu = parse_dockerfile(build_manifest.DOCKERFILES["gpu"]), parse_dockerfile(build_manifest.DOCKERFILES["cpu"])
    (tensorflow,) = [line for line in requirement_lines() if line.startswith("tensorflow==")]
    version = tensorflow.split("==")[1]

    runs = " ".join(_runs(gpu))
    assert f"tensorflow[and-cuda]=={version}" in runs
    constraints = {}
    for instruction in gpu.structure:
        if instruction["instruction"] == "COPY":
            *sources, destination = instruction["value"].split()
            if sources == ["docker/gpu-constraints.txt"]:
                assert f"-c {destination}" in runs
                constraints = {
                    line.split("==")[0]: line.split("==")[1] for line in requirement_lines("docker/gpu-constraints.txt")
                }
    # Every wheel the and-cuda extra of the pinned TensorFlow pulls is pinned, inside its range.
    assert metadata.version("tensorflow") == version
    and_cuda = [
        Requirement(text)
        for text in metadata.requires("tensorflow")
        if Requirement(text).marker is not None and Requirement(text).marker.evaluate({"extra": "and-cuda"})
    ]
    assert and_cuda and sorted(constraints) == sorted(requirement.name for requirement in and_cuda)
    for requirement in and_cuda:
        assert requirement.specifier.contains(constraints[requirement.name]), (requirement, constraints)
    assert REQUIRE_GPU_ENV not in cpu.envs
    monkeypatch.setenv(REQUIRE_GPU_ENV, gpu.envs[REQUIRE_GPU_ENV])
    from adapter.core.devices import gpu_required

    assert gpu_required()


def test_cpu_image_bakes_the_conversions_into_the_hub_cache_it_keeps():
    cpu = parse_dockerfile(build_manifest.DOCKERFILES["cpu"])
    runs = " ".join(_runs(cpu))

    assert "tools/bake_conversions.py" in runs
    assert cpu.envs["TFHUB_CACHE_DIR"].startswith("/opt/")  # in the image, not in HOME=/tmp
    assert "BAKE_CONVERSIONS" in cpu.args and cpu.args["BAKE_CONVERSIONS"] == "1"
    # The build's copy of the code is removed in the same step: the platform runs the codebase.
    assert "rm -rf /opt/movinet/bake" in runs


def test_dockerignore_lets_the_copied_files_into_the_build_context():
    ignore = pathspec.PathSpec.from_lines("gitignore", (ROOT / ".dockerignore").read_text().splitlines())
    for dockerfile in build_manifest.DOCKERFILES.values():
        parser = parse_dockerfile(dockerfile)
        for instruction in parser.structure:
            if instruction["instruction"] == "COPY":
                *sources, _ = instruction["value"].split()
                assert not any(ignore.match_file(source) for source in sources), sources
    assert ignore.match_file(".venv/lib/python3.11/site.py")
    assert ignore.match_file(".cache/test-models/a0-base/saved_model.pb")


def _manifest_images(manifest: dict) -> dict[str, str]:
    return {config["name"]: config["runtime"]["runnerImage"] for config in manifest["components"]["computeConfigs"]}


@pytest.mark.parametrize("registry", ["docker.io/someone", "registry.example.com/team/images"])
def test_images_built_are_the_ones_the_manifest_runs(registry):
    commands = build_images.docker_commands(registry, push=True)
    built = {
        command[command.index("--file") + 1]: command[command.index("--tag") + 1]
        for command in commands
        if command[1] == "build"
    }
    pushed = [command[2] for command in commands if command[1] == "push"]

    manifest = build_manifest.build_manifest(image_registry=registry)
    expected = {
        build_manifest.DOCKERFILES[variant]: _manifest_images(manifest)[config]
        for config, variant in build_manifest.CONFIG_IMAGES.items()
    }
    assert built == expected
    assert sorted(pushed) == sorted(expected.values())
    for dockerfile, image in built.items():
        assert (ROOT / dockerfile).is_file()
        assert image.startswith(registry + "/")
        assert image.endswith(f":{adapter.__version__}-{'gpu' if 'gpu' in dockerfile else 'cpu'}")


def test_committed_manifest_runs_dataloops_public_bases_anyone_can_pull():
    manifest = json.loads((ROOT / "dataloop.json").read_text())
    images = _manifest_images(manifest)
    assert images == {
        config: build_manifest.PUBLIC_RUNNER_BASES[variant] for config, variant in build_manifest.CONFIG_IMAGES.items()
    }
    # Nothing only Dataloop can push to.
    assert not [image for image in images.values() if "gcr.io/viewo-g" in image]
    assert all(image.startswith("hub.dataloop.ai/dtlpy-runner-images/") for image in images.values())


def test_build_images_needs_a_registry(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_images.main(["--dry-run"])
    assert exit_info.value.code == 2
    assert "--image-registry" in capsys.readouterr().err


def test_build_images_dry_run_prints_and_runs_nothing(capsys):
    assert build_images.main(["--dry-run", "--push", "--image-registry", "registry.example.com/team"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "$ docker build --file docker/cpu.Dockerfile --tag "
        f"registry.example.com/team/movinet-adapter:{adapter.__version__}-cpu .",
        f"$ docker push registry.example.com/team/movinet-adapter:{adapter.__version__}-cpu",
        "$ docker build --file docker/gpu.Dockerfile --tag "
        f"registry.example.com/team/movinet-adapter:{adapter.__version__}-gpu .",
        f"$ docker push registry.example.com/team/movinet-adapter:{adapter.__version__}-gpu",
    ]


# --- what dpks.publish packs ----------------------------------------------------------------


def test_publish_packs_the_code_and_leaves_local_files_out(tmp_path):
    """dpks.publish without a codebase zips the folder with dtlpy's Zipping, honouring .gitignore."""
    from dtlpy.miscellaneous.zipping import Zipping

    folder = tmp_path / "repo"
    heavy = {".git", ".venv", ".cache", "runs", "samples", "build", "dist", ".pytest_cache"}
    shutil.copytree(
        ROOT, folder, ignore=lambda directory, names: [n for n in names if n in heavy or n == "__pycache__"]
    )
    local_files = [
        ".venv/lib/python3.11/site-packages/tensorflow/__init__.py",
        ".cache/test-models/a0-base/saved_model.pb",
        "samples/sample.mp4",
        "runs/best/weights.h5",
        "build/lib/adapter/cli/parser.py",
        "movinet_adapter.egg-info/PKG-INFO",
        "adapter/__pycache__/cli.cpython-311.pyc",
        "dataloop.release.json",
    ]
    for relative in local_files:
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text("local\n")
    archive = tmp_path / "codebase.zip"

    Zipping.zip_directory(zip_filename=str(archive), directory=str(folder), ignore_directories=["artifacts"])

    names = set(zipfile.ZipFile(archive).namelist())
    manifest = json.loads((ROOT / "dataloop.json").read_text())
    (module,) = manifest["components"]["modules"]
    needed = {
        module["entryPoint"],
        "adapter/__init__.py",
        "adapter/cli/parser.py",
        "adapter/data/kinetics_600_labels.txt",
        "requirements.txt",
        "dataloop.json",
    }
    assert needed <= names
    assert not [name for name in names if any(name.startswith(relative) for relative in local_files)]


def test_installed_copy_holds_every_module_of_the_package(installed):
    # Subpackages (adapter.training) are easy to leave out of a setuptools package list.
    source = {path.relative_to(ROOT).as_posix() for path in (ROOT / "adapter").rglob("*.py")}
    copied = {path.relative_to(installed).as_posix() for path in (installed / "adapter").rglob("*.py")}

    assert source <= copied, sorted(source - copied)
