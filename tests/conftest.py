"""Shared fixtures: offline pretrained models and an offline Dataloop platform.

Models: `python -m adapter export-hub` writes hub-format SavedModels of the official
architecture (random weights: real ones cannot be downloaded here). They are cached
between runs in .cache/test-models (or $MOVINET_TEST_CACHE) and linked into a temporary
TFHUB_CACHE_DIR under the sha1 of the real tfhub.dev handle, so tensorflow_hub resolves
the real URL without a network.

Platform: only the SDK calls that talk HTTP are replaced (model.update, item.download,
annotations.upload/delete, artifacts, metrics, feature sets and feature vectors); the
adapter's own code runs for real.
Model artifacts live per model in a temporary folder, so an upload comes down again on the
next download. OfflinePlatform.add_dataset() serves a local folder in prepare_data's layout
as a platform dataset (listing, export and item downloads) and answers model clones.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import types
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HANDLE = "https://tfhub.dev/tensorflow/movinet/a0/{mode}/kinetics-600/classification/3"
MODES = ("base", "stream")


def _cache_root() -> Path:
    # Keyed by the versions that define the exported architecture.
    versions = f"tfm{metadata.version('tf-models-official')}-tf{metadata.version('tensorflow')}"
    return Path(os.environ.get("MOVINET_TEST_CACHE", ROOT / ".cache" / "test-models")) / versions


def _export_missing(cache_root: Path) -> dict[str, Path]:
    """Export the a0 models not cached yet, in parallel (one process each); return their paths."""
    targets = {mode: cache_root / f"a0-{mode}" for mode in MODES}
    running = []
    for mode, target in targets.items():
        if (target / "saved_model.pb").is_file():
            continue
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "adapter",
            "export-hub",
            "--model-id",
            "a0",
            "--mode",
            mode,
            "--output",
            str(partial),
        ]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
        running.append(
            (
                subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT),
                partial,
                target,
            )
        )
    for process, partial, target in running:
        output, _ = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"export-hub failed for {target.name}:\n{output.decode(errors='replace')[-4000:]}")
        partial.rename(target)  # only complete exports become visible to later runs
    return targets


@pytest.fixture(scope="session")
def exported_models() -> dict[str, Path]:
    cache_root = _cache_root()
    cache_root.mkdir(parents=True, exist_ok=True)
    # pytest-xdist runs a session per worker: one exports, the others wait and find the exports.
    with open(cache_root / ".export.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _export_missing(cache_root)


# A base model small enough to train on 2 CPU cores: 4 frames of 32 x 32 (a0 needs imgz >= 32).
# runtime pinned: each fine-tuned model would otherwise convert to TF Lite (tests that need it unpin it).
SMALL_TRAINING = dict(
    model_id="a0",
    model_mode="base",
    imgz=32,
    n_frames=4,
    batch_size=4,
    fps=5,
    learning_rate=0.001,
    runtime="tensorflow",
)


def set_options(**values) -> list[str]:
    """The command line's `--set KEY=VALUE` arguments, a pair for each keyword."""
    return [argument for key, value in values.items() for argument in ("--set", f"{key}={value}")]


def handle_sha1(mode: str) -> str:
    from adapter.model.hub import hub_cache_name

    return hub_cache_name(HANDLE.format(mode=mode))


@pytest.fixture(scope="session")
def hub_cache(exported_models, tmp_path_factory):
    """TFHUB_CACHE_DIR holding the exported a0 models under their real handles' sha1."""
    cache_dir = tmp_path_factory.mktemp("tfhub-cache")
    for mode, exported in exported_models.items():
        os.symlink(exported, cache_dir / handle_sha1(mode))
    previous = os.environ.get("TFHUB_CACHE_DIR")
    os.environ["TFHUB_CACHE_DIR"] = str(cache_dir)
    yield cache_dir
    if previous is None:
        os.environ.pop("TFHUB_CACHE_DIR", None)
    else:
        os.environ["TFHUB_CACHE_DIR"] = previous


class OfflinePlatform:
    """Records what the adapter would have sent to the platform."""

    def __init__(self, monkeypatch=None):
        self.monkeypatch = monkeypatch
        self.artifacts_root = tempfile.mkdtemp(prefix="offline-artifacts-")
        self.model_statuses: list[str] = []  # model.status at each model.update
        self.artifact_downloads: list[str] = []
        self.datasets: dict = {}  # dataset id -> dl.Dataset
        self.dataset_items: dict[str, list[dict]] = {}  # dataset id -> item JSONs (with annotations)
        self.clone_requests: list[dict] = []  # what models.clone sent
        self.lock = threading.Lock()
        self.files: dict[str, str] = {}  # item id -> local file that item.download copies
        self.uploaded: dict[str, list] = {}  # item id -> annotations uploaded
        self.deleted: list[str] = []  # item ids whose model annotations were cleaned
        self.caller = "movinet-service-bot@bot.dataloop.ai"  # who uploads (a service acts as its bot)
        self.annotation_count = 0
        self.model_updates = 0
        self.artifact_uploads: list[str] = []
        self.metrics: list = []
        self.feature_sets: list = []  # dl.FeatureSet entities created
        self.features: list[dict] = []  # one per uploaded vector: item id, value, feature set id

    def add_item(self, path, *, name=None, mimetype="video/mp4", item_id=None):
        import dtlpy as dl

        name = name or os.path.basename(str(path))
        item_id = item_id or f"item-{len(self.files) + 1}"
        self.files[item_id] = str(path)
        return dl.Item.from_json(
            _json={
                "id": item_id,
                "name": name,
                "filename": "/" + name,
                "type": "file",
                "metadata": {"fps": 10, "system": {"mimetype": mimetype}},
            },
            client_api=dl.client_api,
            dataset=None,
            project=None,
            is_fetched=True,
        )

    def add_feature_set(self, *, name, size, model_id, set_type=None, entity_type="item", project_id="project-1"):
        """A feature set as the platform stores it (what feature_sets.create makes, or one made earlier)."""
        import dtlpy as dl

        with self.lock:
            feature_set = dl.FeatureSet.from_json(
                _json={
                    "id": f"feature-set-{len(self.feature_sets) + 1}",
                    "name": name,
                    "size": size,
                    "type": set_type or name,
                    "entityType": entity_type,
                    "project": project_id,
                    "modelId": model_id,
                },
                client_api=dl.client_api,
            )
            self.feature_sets.append(feature_set)
        return feature_set

    def artifacts_dir(self, model_id: str) -> str:
        """The folder holding a model's artifacts (what uploads wrote)."""
        return os.path.join(self.artifacts_root, model_id)

    def artifact_files(self, model_id: str) -> set[str]:
        """The model's artifacts as paths relative to its artifact folder."""
        root = self.artifacts_dir(model_id)
        return {os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files}

    def add_dataset(self, root, *, dataset_id="dataset-1", project_id="project-1", subsets=("train", "validation")):
        """Serve root (prepare_data's layout: <subset>/items, <subset>/json) as a platform dataset.

        Each item is tagged with its subset (metadata.system.tags.<subset>), as the platform's
        ML subsets are; subset_filters() gives the matching model subset filters.
        """
        import dtlpy as dl

        items = []
        for subset in subsets:
            for directory, _, files in os.walk(os.path.join(root, subset, "json")):
                for name in sorted(files):
                    with open(os.path.join(directory, name)) as file:
                        item = json.load(file)
                    item.setdefault("metadata", {}).setdefault("system", {}).setdefault("tags", {})[subset] = True
                    item["datasetId"] = dataset_id
                    self.files[item["id"]] = os.path.join(root, subset, "items", item["filename"].lstrip("/"))
                    items.append(item)
        self.dataset_items[dataset_id] = items
        self.datasets[dataset_id] = dl.Dataset.from_json(
            _json={"id": dataset_id, "name": "offline-dataset", "projects": [project_id], "itemsCount": len(items)},
            client_api=dl.client_api,
            project=dl.Project.from_json(_json={"id": project_id, "name": "offline-project"}, client_api=dl.client_api),
        )
        self._serve_datasets()
        return self.datasets[dataset_id]

    def item_with_annotations(self, item: dict) -> dict:
        """An item JSON as exported now: its own annotations and those uploaded to it since."""
        uploaded = [a.to_json() if hasattr(a, "to_json") else a for a in self.uploaded.get(item["id"], [])]
        annotations = []
        for number, annotation in enumerate([*item.get("annotations", []), *uploaded]):
            stored = stored_annotation(annotation, item["id"])
            stored.setdefault("id", f"{item['id']}-annotation-{number}")
            annotations.append(stored)
        return {**item, "annotations": annotations}

    def matching_items(self, dataset_id: str, filters) -> list[dict]:
        """The dataset's items that the filters' DQL query selects, sorted as it asks (default: by id)."""
        query = filters.prepare() if hasattr(filters, "prepare") else (filters or {})
        items = [i for i in self.dataset_items[dataset_id] if dql_matches(i, query.get("filter", {}))]
        direction = (query.get("sort") or {}).get("id", "ascending")
        return sorted(items, key=lambda item: item["id"], reverse=direction == "descending")

    def _serve_datasets(self):
        """The dataset calls that talk HTTP: get, item listing, export, item download; and model clone."""
        import dtlpy as dl

        state, patch = self, self.monkeypatch

        def datasets_get(self, dataset_name=None, dataset_id=None, **kwargs):
            return state.datasets[dataset_id]

        def items_list(self, filters=None, **kwargs):
            import dtlpy as dl

            query = filters.prepare() if filters is not None else {}
            matched = state.matching_items(self.dataset.id, filters if filters is not None else {})
            size = query.get("pageSize") or len(matched) or 1
            start = (query.get("page") or 0) * size
            dataset = state.datasets[self.dataset.id]
            page = [
                dl.Item.from_json(_json=i, client_api=dl.client_api, dataset=dataset)
                for i in matched[start : start + size]
            ]
            # What the SDK reads of a PagedEntities: the count, the first page's items, and its pages.
            return _Pages(len(matched), page)

        def export_recursive(self, dataset=None, local_path=None, filters=None, **kwargs):
            path = os.path.join(local_path, "export.json")
            with open(path, "w") as file:
                json.dump(
                    [state.item_with_annotations(item) for item in state.matching_items(dataset.id, filters)], file
                )
            yield path

        def thread_download(self, item, local_path=None, local_filepath=None, **kwargs):
            shutil.copyfile(state.files[item.id], local_filepath)
            return local_filepath

        def gen_request(self, req_type, path, json_req=None, **kwargs):
            match = re.fullmatch(r"/ml/models/([^/]+)/clone", path)
            if req_type != "post" or match is None:
                raise AssertionError(f"unexpected platform request in an offline test: {req_type} {path}")
            state.clone_requests.append(json.loads(json.dumps(json_req)))
            model_json = {**json_req, "id": f"{match.group(1)}-clone-{len(state.clone_requests)}", "status": "created"}
            return True, types.SimpleNamespace(json=lambda: model_json)

        patch.setattr(dl.repositories.Datasets, "get", datasets_get)
        patch.setattr(dl.repositories.Items, "list", items_list)
        patch.setattr(dl.repositories.Datasets, "_export_recursive", export_recursive)
        patch.setattr(dl.repositories.Downloader, "_Downloader__thread_download", thread_download)
        patch.setattr(type(dl.client_api), "gen_request", gen_request)


def stored_annotation(annotation: dict, item_id: str) -> dict:
    """An annotation JSON with the fields the platform adds to every stored annotation."""
    stored = {"creator": "offline", "createdAt": "", "updatedAt": "", "updatedBy": "offline", "metadata": {}}
    stored.update({key: value for key, value in annotation.items() if value is not None})
    return {**stored, "itemId": item_id}


def annotation_model_names(annotation) -> set:
    """The model names an annotation (entity or JSON) carries in metadata.user.model and metadata.system.model."""
    metadata = annotation.metadata if hasattr(annotation, "metadata") else annotation.get("metadata", {})
    return {(metadata.get(scope) or {}).get("model", {}).get("name") for scope in ("user", "system")} - {None}


class _Pages:
    """The part of dtlpy's PagedEntities the SDK uses: items_count, items (this page), iteration over pages."""

    def __init__(self, items_count, page):
        self.items_count, self.items = items_count, page

    def __iter__(self):
        return iter([self.items] if self.items else [])

    def all(self):
        return iter(self.items)


def _dql_field(item: dict, field: str):
    if field == "dir" and "dir" not in item:
        return os.path.dirname(item.get("filename", "/")) or "/"
    value = item
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            return {"hidden": False}.get(field)
        value = value[part]
    return value


def _dql_condition(value, condition) -> bool:
    if not isinstance(condition, dict):
        return value == condition
    checks = {
        "$eq": lambda v, c: v == c,
        "$ne": lambda v, c: v != c,
        "$in": lambda v, c: v in c,
        "$nin": lambda v, c: v not in c,
        "$gt": lambda v, c: v is not None and v > c,
        "$gte": lambda v, c: v is not None and v >= c,
        "$lt": lambda v, c: v is not None and v < c,
        "$lte": lambda v, c: v is not None and v <= c,
    }
    unknown = set(condition) - set(checks)
    if unknown:
        raise AssertionError(f"the offline platform does not evaluate DQL operators {sorted(unknown)}")
    return all(checks[op](value, operand) for op, operand in condition.items())


def dql_matches(item: dict, query: dict) -> bool:
    """Whether an item JSON matches a DQL filter ($and, $or, field equality and comparison operators)."""
    for key, condition in query.items():
        if key == "$and":
            if not all(dql_matches(item, part) for part in condition):
                return False
        elif key == "$or":
            if not any(dql_matches(item, part) for part in condition):
                return False
        elif not _dql_condition(_dql_field(item, key), condition):
            return False
    return True


def subset_filters(subset: str) -> dict:
    """A model subset filter as the platform writes it: the items tagged with that subset."""
    return {"filter": {"$and": [{"hidden": False}, {"type": "file"}, {f"metadata.system.tags.{subset}": True}]}}


def install_offline_platform(monkeypatch) -> OfflinePlatform:
    import dtlpy as dl

    state = OfflinePlatform(monkeypatch)

    def model_update(self, *args, **kwargs):
        with state.lock:
            state.model_updates += 1
            state.model_statuses.append(self.status)
        return self

    def item_download(self, local_path=None, overwrite=False, **kwargs):
        source = state.files[self.id]
        target = os.path.join(local_path or tempfile.mkdtemp(prefix="offline-download-"), self.name)
        shutil.copyfile(source, target)
        return target

    def annotations_upload(self, annotations, **kwargs):
        # As the platform: each stored annotation gets an id, its creator (the caller: the
        # service's bot) and equal creation and update times.
        now = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
        with state.lock:
            for annotation in annotations:
                state.annotation_count += 1
                annotation.id = f"annotation-{state.annotation_count}"
                annotation.creator = annotation.updated_by = state.caller
                annotation.created_at = annotation.updated_at = now
            state.uploaded.setdefault(self.item.id, []).extend(annotations)
        return annotations

    def annotations_list(self, filters=None, **kwargs):
        # As the platform: the item's stored annotations that the filter's DQL query selects.
        query = filters.prepare().get("filter", {}) if filters is not None else {}
        with state.lock:
            stored = list(state.uploaded.get(self.item.id, []))
        return [
            a if hasattr(a, "to_json") else dl.Annotation.from_json(_json=stored_annotation(a, self.item.id))
            for a in stored
            if dql_matches(a.to_json() if hasattr(a, "to_json") else a, query)
        ]

    def annotations_delete(self, filters=None, **kwargs):
        # As the platform: remove the item's annotations that the filter's DQL query selects.
        if filters is None:
            raise AssertionError("the offline platform deletes annotations by filter only")
        query = filters.prepare().get("filter", {})
        with state.lock:
            state.deleted.append(self.item.id)
            state.uploaded[self.item.id] = [
                a
                for a in state.uploaded.get(self.item.id, [])
                if not dql_matches(a.to_json() if hasattr(a, "to_json") else a, query)
            ]
        return True

    def artifacts_upload(self, filepath=None, **kwargs):
        state.artifact_uploads.append(filepath)
        if self.model is None or filepath is None:
            return []
        # As the SDK uploads 'folder/*': the folder's files, recursively, under the model's artifacts.
        source = os.path.dirname(filepath) if filepath.endswith("*") else filepath
        shutil.copytree(source, state.artifacts_dir(self.model.id), dirs_exist_ok=True)
        self.model.model_artifacts = [
            dl.Artifact.from_json(
                _json={
                    "id": relative,
                    "type": "file",
                    "name": os.path.basename(relative),
                    "filename": f"/artifacts/models/{self.model.name}/{relative}",
                },
                client_api=dl.client_api,
            )
            for relative in sorted(state.artifact_files(self.model.id))
        ]
        self.model.update()
        return []

    def artifacts_download(self, local_path=None, **kwargs):
        if self.model is not None:
            state.artifact_downloads.append(self.model.id)
            if os.path.isdir(state.artifacts_dir(self.model.id)):
                shutil.copytree(state.artifacts_dir(self.model.id), local_path, dirs_exist_ok=True)
        return local_path

    def artifacts_delete(self, artifact_id=None, **kwargs):
        os.remove(os.path.join(state.artifacts_dir(self.model.id), artifact_id))  # ids are relative paths here
        return True

    def metrics_create(self, samples, *args, **kwargs):
        state.metrics.append(samples)
        return True

    def feature_sets_list(self, filters=None, **kwargs):
        # The sets created in this test that the query selects (the SDK asks by modelId, then by name).
        query = filters.prepare().get("filter", {}) if filters is not None else {}
        with state.lock:
            existing = [s for s in state.feature_sets if dql_matches(s.to_json(), query)]
        return types.SimpleNamespace(items_count=len(existing), items=existing)

    def feature_sets_create(self, name, size, set_type, entity_type, project_id=None, model_id=None, org_id=None):
        return state.add_feature_set(
            name=name, size=size, set_type=set_type, entity_type=entity_type, project_id=project_id, model_id=model_id
        )

    def features_create(self, value, project_id=None, feature_set_id=None, entity=None, **kwargs):
        entities, values = (entity, value) if isinstance(entity, list) else ([entity], [value])
        with state.lock:
            for item, vector in zip(entities, values):
                state.features.append(
                    {"item_id": item.id, "value": vector, "feature_set_id": feature_set_id, "project_id": project_id}
                )
        return []

    monkeypatch.setattr(dl.Model, "update", model_update)
    monkeypatch.setattr(dl.Item, "download", item_download)
    monkeypatch.setattr(dl.repositories.Annotations, "upload", annotations_upload)
    monkeypatch.setattr(dl.repositories.Annotations, "delete", annotations_delete)
    monkeypatch.setattr(dl.repositories.Annotations, "list", annotations_list)
    monkeypatch.setattr(dl.repositories.Artifacts, "upload", artifacts_upload)
    monkeypatch.setattr(dl.repositories.Artifacts, "download", artifacts_download)
    monkeypatch.setattr(dl.repositories.FeatureSets, "list", feature_sets_list)
    monkeypatch.setattr(dl.repositories.FeatureSets, "create", feature_sets_create)
    monkeypatch.setattr(dl.repositories.Features, "create", features_create)
    monkeypatch.setattr(dl.repositories.Artifacts, "delete", artifacts_delete)
    if hasattr(dl.repositories, "Metrics"):
        monkeypatch.setattr(dl.repositories.Metrics, "create", metrics_create)
    return state


@pytest.fixture
def platform(monkeypatch) -> OfflinePlatform:
    return install_offline_platform(monkeypatch)


@pytest.fixture(scope="module")
def module_platform() -> OfflinePlatform:
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield install_offline_platform(monkeypatch)


def model_entity(configuration: dict, *, labels=None, name="movinet-a0-test", model_id="model-1", project_id=None):
    """A dl.Model as the platform would hand it to the adapter (update() is stubbed by `platform`).

    project_id: the model's project (embed_items creates the feature set there).
    """
    import dtlpy as dl

    return dl.Model.from_json(
        _json={
            **({"context": {"project": project_id}} if project_id else {}),
            "id": model_id,
            "name": name,
            "configuration": dict(configuration),
            "labels": labels,
            "inputType": "video",
            "outputType": "class",
            "status": "pre-trained",
        },
        client_api=dl.client_api,
        project=None,
        package=None,
    )
