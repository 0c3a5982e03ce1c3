"""A model entity that lives only in this process, for running the adapter without a platform.

The SDK writes configuration changes back to the platform (model.update) as soon as a
model entity is set; offline there is no platform, so the entity keeps them in memory.
"""

from __future__ import annotations

import dtlpy as dl


class OfflineModel(dl.Model):
    def update(self, *args, **kwargs):
        return self


def offline_model(model_json: dict) -> OfflineModel:
    """An OfflineModel from a model entry of dataloop.json (name, configuration, labels...)."""
    return OfflineModel.from_json(
        _json={"id": f"offline-{model_json['name']}", "status": "pre-trained", **model_json},
        client_api=dl.client_api,
        project=None,
        package=None,
        is_fetched=False,
    )
