"""The parts of Darts' private API that TimesCLIPModel relies on: this file fails first if Darts changes them.

``_TimesCLIPModule`` overrides no private Darts method. Its ``training_step`` / ``validation_step`` (Lightning's
hooks) call Darts' helpers ``_compute_loss`` and ``_update_metrics`` and read ``train_criterion`` /
``val_criterion`` / ``train_metrics`` / ``val_metrics``, as Darts' own ``_train_val_step`` does; its forward returns
a subclass of ``PLModuleOutput``. If Darts renames or re-shapes any of these, the tests below say which.

``CheckedInputsMixin.is_fitted`` reads Darts' private ``_fit_called`` (Darts has no public accessor); the package
reads it nowhere else.
"""

from __future__ import annotations

import dataclasses
import inspect

from darts.models.forecasting.pl_forecasting_module import PLForecastingModule
from darts.utils.data.torch_datasets.utils import ModuleStage, PLModuleOutput

from darts_timesclip import TimesCLIPModel
from darts_timesclip.lightning_module import TimesCLIPModuleOutput
from tests._helpers import make_series, model_kwargs

DARTS_FIT_FLAG = "_fit_called"


def test_darts_loss_and_metric_helpers_keep_their_signatures():
    assert list(inspect.signature(PLForecastingModule._compute_loss).parameters) == [
        "self",
        "output",
        "target",
        "criterion",
        "sample_weight",
    ]
    assert list(inspect.signature(PLForecastingModule._update_metrics).parameters) == [
        "self",
        "output",
        "target",
        "metrics",
    ]
    assert {ModuleStage.TRAIN.value, ModuleStage.VALIDATE.value} == {"train", "val"}  # our logged names


def test_darts_steps_still_delegate_to_the_helper_we_replace():
    # we override the public hooks; Darts' versions must still be the thin wrappers we mirror
    for hook in (PLForecastingModule.training_step, PLForecastingModule.validation_step):
        assert "self._train_val_step(" in inspect.getsource(hook)
    source = inspect.getsource(PLForecastingModule._train_val_step)
    for call in ("self._compute_loss(", "self._update_metrics(", "batch.to_module_input(stage=stage)"):
        assert call in source, call


def test_module_output_extends_darts_output_and_survives_replace():
    assert issubclass(TimesCLIPModuleOutput, PLModuleOutput)
    assert {f.name for f in dataclasses.fields(PLModuleOutput)} == {"prediction", "state"}
    out = TimesCLIPModuleOutput(prediction=1, alignment_loss=2)
    replaced = out.replace(prediction=3)  # what Darts' predict path and io_processor do
    assert isinstance(replaced, TimesCLIPModuleOutput) and replaced.alignment_loss == 2


def test_the_trained_module_uses_our_steps():
    model = TimesCLIPModel(**model_kwargs()).fit(make_series())
    assert type(model.model).training_step is not PLForecastingModule.training_step
    assert {"train_loss", "train_alignment_loss", "train_total_loss"} <= set(model.trainer.callback_metrics)


def test_is_fitted_follows_darts_private_fit_flag_through_fit_save_and_load(tmp_path):
    model = TimesCLIPModel(**model_kwargs())
    assert vars(model)[DARTS_FIT_FLAG] is False and model.is_fitted is False  # KeyError: Darts renamed it
    assert model.trained_component_counts == (None, None)
    series, covariates = make_series(), make_series(n_components=3, seed=1)
    model.fit(series, past_covariates=covariates)
    assert vars(model)[DARTS_FIT_FLAG] is True and model.is_fitted is True
    assert model.trained_component_counts == (2, 3)
    model.save(str(tmp_path / "model.pt"))
    loaded = TimesCLIPModel.load(str(tmp_path / "model.pt"))
    assert loaded.is_fitted is True and loaded.trained_component_counts == (2, 3)
    (tmp_path / "model.pt.ckpt").unlink()  # a model file without its weights loads unfitted
    assert TimesCLIPModel.load(str(tmp_path / "model.pt")).is_fitted is False
    assert TimesCLIPModel(**model_kwargs()).fit(series).trained_component_counts == (2, None)
