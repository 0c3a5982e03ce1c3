"""dataloop.json: in sync with its generator, loadable by dtlpy, and consistent with the code.

Offline: no login and no network; dtlpy only parses the manifest.
"""

import importlib.util
import inspect
import json
import logging
from pathlib import Path

import dtlpy
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_build_manifest():
    spec = importlib.util.spec_from_file_location("build_manifest", ROOT / "tools" / "build_manifest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_manifest = _load_build_manifest()

import adapter  # noqa: E402  (the tool puts the root on sys.path)
from adapter.core.config import MovinetConfig  # noqa: E402
from adapter.core.presets import kinetics_600_labels
from adapter.core.variants import MODEL_IDS, MODEL_MODES, VARIANTS  # noqa: E402

EXPECTED_MODEL_NAMES = {f"movinet-{model_id}-{model_mode}" for model_id in MODEL_IDS for model_mode in MODEL_MODES}


@pytest.fixture(scope="module")
def manifest():
    return json.loads((ROOT / "dataloop.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dpk(manifest):
    return dtlpy.Dpk.from_json(_json=manifest, client_api=dtlpy.client_api, project=None)


@pytest.fixture(scope="module")
def module(dpk):
    (module,) = dpk.components.modules
    return module


@pytest.fixture(scope="module")
def adapter_class(module):
    entry_point = ROOT / module.entry_point
    assert entry_point.is_file(), f"entryPoint {module.entry_point} does not exist"
    # Import as the package module, the way the adapter's own absolute imports expect.
    dotted = ".".join(Path(module.entry_point).with_suffix("").parts)
    imported = importlib.import_module(dotted)
    assert Path(imported.__file__).resolve() == entry_point.resolve()
    return getattr(imported, module.class_name)


# --- generated files ------------------------------------------------------------------------


def test_dataloop_json_is_what_the_generator_writes(manifest):
    assert manifest == build_manifest.build_manifest(), "dataloop.json is stale: run python tools/build_manifest.py"
    # Byte for byte too, so formatting-only edits are caught as well.
    assert (ROOT / "dataloop.json").read_text(encoding="utf-8") == build_manifest.dumps(manifest)


def test_generator_is_deterministic():
    assert build_manifest.dumps(build_manifest.build_manifest()) == build_manifest.dumps(
        build_manifest.build_manifest()
    )


def test_check_reports_nothing_when_in_sync():
    assert build_manifest.check() == []


def test_check_fails_when_a_generated_file_is_edited(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(build_manifest, "ROOT", tmp_path)
    monkeypatch.setattr(build_manifest, "MANIFEST_PATH", tmp_path / "dataloop.json")
    monkeypatch.setattr(build_manifest, "CONFIGS_DIR", tmp_path / "configs")
    assert build_manifest.main([]) == 0
    assert build_manifest.main(["--check"]) == 0

    edited = json.loads((tmp_path / "dataloop.json").read_text())
    edited["components"]["models"][0]["configuration"]["imgz"] = 224
    (tmp_path / "dataloop.json").write_text(json.dumps(edited, indent=2) + "\n")
    (tmp_path / "configs" / "movinet-a9-base.json").write_text("{}\n")
    capsys.readouterr()

    assert build_manifest.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "dataloop.json" in err
    assert "movinet-a9-base.json" in err

    assert build_manifest.main([]) == 0
    assert not (tmp_path / "configs" / "movinet-a9-base.json").exists()
    assert build_manifest.check() == []


def test_preset_files_match_the_presets():
    files = sorted((ROOT / "configs").glob("movinet-*.json"))
    assert {path.stem for path in files} == EXPECTED_MODEL_NAMES
    for path in files:
        configuration = json.loads(path.read_text(encoding="utf-8"))
        variant = VARIANTS[configuration["model_id"]]
        assert path.stem == f"movinet-{configuration['model_id']}-{configuration['model_mode']}"
        assert configuration["imgz"] == variant.imgz
        assert configuration["fps"] == variant.fps
        assert configuration["embeddings_size"] == variant.embeddings_size


# --- DPK structure --------------------------------------------------------------------------


def test_dpk_loads_offline(dpk, manifest):
    assert dpk.name == manifest["name"] == "movinet"
    assert dpk.version == adapter.__version__
    attributes = dpk.attributes
    assert attributes["Provider"] == "TensorFlow"
    assert attributes["Category"] == "Model"
    assert attributes["Computer Vision"] == "Video Classification"
    assert attributes["Media Type"] == ["Video"]
    assert attributes["License"] == "Apache 2.0"


def test_compute_configs_referenced_exist(dpk, module):
    names = {config.name for config in dpk.components.compute_configs}
    assert {"movinet-deploy", "movinet-train-evaluate"} <= names
    assert module.compute_config == "movinet-deploy"
    for function in module.functions:
        assert function.compute_config is None or function.compute_config in names
    functions = {function.name: function for function in module.functions}
    assert functions["train_model"].compute_config == "movinet-train-evaluate"
    assert functions["evaluate_model"].compute_config == "movinet-train-evaluate"


def test_module_declares_the_model_functions(module):
    assert module.name == "movinet-module"
    assert module.entry_point == "adapter/movinet_adapter.py"
    assert module.class_name == "MovinetAdapter"
    assert [(io.type, io.name) for io in module.init_inputs] == [("Model", "model_entity")]
    declared = {
        function.name: ([(io.type, io.name) for io in function.inputs], [(io.type, io.name) for io in function.outputs])
        for function in module.functions
    }
    assert declared == {
        "predict_items": ([("Item[]", "items")], [("Item[]", "items"), ("Annotation[]", "annotations")]),
        "predict_dataset": ([("Dataset", "dataset"), ("Json", "filters")], []),
        "embed_items": ([("Item[]", "items")], [("Item[]", "items"), ("Json[]", "features")]),
        "embed_dataset": ([("Dataset", "dataset"), ("Json", "filters")], []),
        "train_model": ([("Model", "model")], [("Model", "model")]),
        "evaluate_model": (
            [("Model", "model"), ("Dataset", "dataset"), ("Json", "filters")],
            [("Model", "model"), ("Dataset", "dataset")],
        ),
    }
    for function in module.functions:
        assert function.display_name
        assert function.display_icon is not None


# --- the entry point ------------------------------------------------------------------------


def test_entry_point_file_exists(module):
    assert (ROOT / module.entry_point).is_file(), f"entryPoint {module.entry_point} does not exist"


def test_entry_point_class_is_a_model_adapter(adapter_class, module):
    assert inspect.isclass(adapter_class)
    assert adapter_class.__name__ == module.class_name
    assert issubclass(adapter_class, dtlpy.BaseModelAdapter)


def test_init_input_is_a_constructor_parameter(adapter_class, module):
    parameters = inspect.signature(adapter_class.__init__).parameters
    for io in module.init_inputs:
        assert io.name in parameters, f"{module.class_name}.__init__ takes no {io.name!r}"


def test_declared_functions_exist_with_their_inputs(adapter_class, module):
    for function in module.functions:
        method = getattr(adapter_class, function.name, None)
        assert callable(method), f"{module.class_name} has no callable {function.name}"
        parameters = inspect.signature(method).parameters
        for io in function.inputs:
            assert io.name in parameters, f"{module.class_name}.{function.name} takes no {io.name!r}"


# --- models ---------------------------------------------------------------------------------


def test_one_model_per_preset(dpk, module):
    models = dpk.components.models
    assert len(models) == 12
    assert {model["name"] for model in models} == EXPECTED_MODEL_NAMES
    for model in models:
        assert model["moduleName"] == module.name
        assert model["status"] == "pre-trained"
        assert model["inputType"] == "video"
        assert model["outputType"] == "class"
        assert model["description"]
        assert model["artifacts"] == []


@pytest.mark.parametrize("name", sorted(EXPECTED_MODEL_NAMES))
def test_model_configuration_is_valid_and_matches_its_preset(name, manifest, caplog):
    caplog.set_level(logging.DEBUG, logger="adapter.core.config")
    (model,) = [model for model in manifest["components"]["models"] if model["name"] == name]

    config = MovinetConfig.from_dict(model["configuration"])

    assert [record for record in caplog.records if record.levelno >= logging.WARNING] == []
    assert name == f"movinet-{config.model_id}-{config.model_mode}"
    assert config.imgz == VARIANTS[config.model_id].imgz
    assert config.fps == VARIANTS[config.model_id].fps
    assert config.check_embeddings_size() == config.embeddings_size == VARIANTS[config.model_id].embeddings_size
    preset = json.loads((ROOT / "configs" / f"{name}.json").read_text(encoding="utf-8"))
    assert model["configuration"] == preset


@pytest.mark.parametrize("name", sorted(EXPECTED_MODEL_NAMES))
def test_model_labels_are_kinetics_600_in_output_order(name, manifest):
    (model,) = [model for model in manifest["components"]["models"] if model["name"] == name]
    labels = kinetics_600_labels()

    assert model["labels"] == labels
    # One source of truth: the labels ship as the model's labels, not also in the configuration.
    assert "id_to_label_map" not in model["configuration"]
    assert MovinetConfig.from_dict(model["configuration"]).labels_from_map() is None


# --- publishing -----------------------------------------------------------------------------


def test_no_git_codebase_so_publish_packs_this_repository(manifest, dpk):
    # dpks.publish packs the local folder only when the DPK has no codebase; a git codebase
    # would deploy whatever that repository holds instead of this code.
    assert "codebase" not in manifest
    assert dpk.codebase is None


def test_scope_is_project_unless_the_owner_publishes_publicly(manifest):
    assert manifest["scope"] == "project"
    assert build_manifest.build_manifest(scope="public")["scope"] == "public"
    with pytest.raises(ValueError, match="'global'"):
        build_manifest.build_manifest(scope="global")


def test_compute_configs_have_execution_timeouts_beyond_the_platform_default(manifest):
    timeouts = {config["name"]: config.get("executionTimeout") for config in manifest["components"]["computeConfigs"]}
    platform_default = 60 * 60  # dtlpy's Service default
    assert timeouts["movinet-deploy"] > platform_default
    assert timeouts["movinet-train-evaluate"] > platform_default


def _compute_configs(manifest) -> dict:
    return {config["name"]: config for config in manifest["components"]["computeConfigs"]}


def test_training_is_not_preemptible_where_the_platform_has_the_field(manifest):
    configs = _compute_configs(manifest)
    # dtlpy's KubernetesRuntime holds preemptible (the DPK compute config has no top-level field).
    runtime = dtlpy.KubernetesRuntime(**{"pod_type": "gpu-t4", **{"preemptible": False}})
    assert runtime.to_json()["preemptible"] is False
    assert configs["movinet-train-evaluate"]["runtime"]["preemptible"] is False
    assert "preemptible" not in configs["movinet-train-evaluate"]


def test_a_dataset_run_parent_outlives_its_wait_and_its_children_get_other_replicas(manifest):
    from adapter.core.presets import CHILD_BUDGET_S

    deploy = _compute_configs(manifest)["movinet-deploy"]
    timeout, runtime = deploy["executionTimeout"], deploy["runtime"]
    autoscaler = runtime["autoscaler"]
    for model in manifest["components"]["models"]:
        wait = model["configuration"]["predict_embed_timeout"]
        # The parent waits inside its own execution: its wait must end before the platform stops it.
        assert wait < timeout, model["name"]
        # ... with time left after the wait to read the children's reports, and room for more than one round.
        assert timeout - wait >= 10 * 60
        assert wait >= 2 * CHILD_BUDGET_S
    # One execution per replica: a parent waiting holds its replica, so children need others,
    # and a single queued child already asks the autoscaler for one.
    assert runtime["concurrency"] == 1
    assert autoscaler["type"] == "rabbitmq" and autoscaler["queueLength"] == 1
    assert autoscaler["maxReplicas"] >= 2


def test_larger_variants_predict_fewer_videos_per_dataset_execution(manifest):
    limits = {}
    for model in manifest["components"]["models"]:
        configuration = model["configuration"]
        limits.setdefault(configuration["model_id"], set()).add(configuration["predict_embed_subset_limit"])
    # One limit per variant (base and stream share it), within the SDK's default of 1000, and
    # never more videos per execution for a slower variant.
    assert all(len(values) == 1 for values in limits.values())
    ordered = [limits[model_id].pop() for model_id in MODEL_IDS]
    assert all(isinstance(limit, int) and 1 <= limit <= 1000 for limit in ordered)
    assert ordered == sorted(ordered, reverse=True)
    assert ordered[-1] < ordered[0]


def test_release_manifest_goes_to_its_own_file(tmp_path, capsys):
    output = tmp_path / "dataloop.release.json"

    assert build_manifest.main(["--image-registry", "docker.io/someone", "--public", "--output", str(output)]) == 0

    release = json.loads(output.read_text())
    assert release["scope"] == "public"
    images = [config["runtime"]["runnerImage"] for config in release["components"]["computeConfigs"]]
    assert images != [
        config["runtime"]["runnerImage"] for config in build_manifest.build_manifest()["components"]["computeConfigs"]
    ]
    assert images == [
        f"docker.io/someone/movinet-adapter:{adapter.__version__}-cpu",
        f"docker.io/someone/movinet-adapter:{adapter.__version__}-gpu",
    ]
    # Everything else is the committed manifest's.
    committed = build_manifest.build_manifest()
    for config in committed["components"]["computeConfigs"]:
        config["runtime"].pop("runnerImage")
    for config in release["components"]["computeConfigs"]:
        config["runtime"].pop("runnerImage")
    assert {**release, "scope": "project"} == committed


@pytest.mark.parametrize(
    "argv",
    [["--image-registry", "docker.io/someone"], ["--public"], ["--public", "--output", str(ROOT / "dataloop.json")]],
    ids=["registry-without-output", "public-without-output", "output-over-the-default"],
)
def test_release_options_never_overwrite_the_generated_manifest(argv, capsys):
    before = (ROOT / "dataloop.json").read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        build_manifest.main(argv)
    assert exit_info.value.code == 2
    assert "--output" in capsys.readouterr().err
    assert (ROOT / "dataloop.json").read_bytes() == before


def test_declared_functions_have_the_sdk_inputs_and_outputs(module):
    # The platform calls BaseModelAdapter's service functions; the manifest must declare them as the SDK does.
    for function in module.functions:
        spec = getattr(dtlpy.BaseModelAdapter, function.name).__dtlpy__
        assert [(io.type, io.name) for io in function.inputs] == [(io["type"], io["name"]) for io in spec["input"]], (
            function.name
        )
        assert [(io.type, io.name) for io in function.outputs] == [(io["type"], io["name"]) for io in spec["output"]], (
            function.name
        )
