"""``TimesCLIPRegressor`` by scikit-learn's rules: its own estimator checks, and the series conventions.

scikit-learn's checks feed tabular data: an array ``[n_samples, n_features]``, which the regressor reads as
``n_samples`` univariate series of ``n_features`` time steps (aeon's convention). Every check that applies to an
estimator of series runs and passes; those written for a fixed number of columns are listed in
:data:`EXPECTED_FAILED_CHECKS` with the reason, and run in strict mode: a listed check that starts passing fails.
"""

from __future__ import annotations

# ruff: noqa: E402 -- scikit-learn is imported after the check that names it where it is missing
import numpy as np
import pytest
import scipy.sparse
import torch

from tests._extras import requires

requires("sklearn", "regression")

from sklearn.base import clone
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks

from darts_timesclip.regression import TimesCLIPRegressor

#: The smallest encoder that takes scikit-learn's short rows (down to 2 steps), trained for one epoch.
ENCODER = {"backbone": "tiny", "patch_length": 2, "patch_stride": 1}
FAST = dict(encoder_params=ENCODER, n_epochs=1, hidden_size=8, random_state=0)

_ANY_LENGTH = (
    "series of any length are accepted at predict (one patch up to the text tower's positions), so no number of "
    "features is fixed at fit"
)
_SCORE = (
    "R^2 > 0.5 on the diabetes features read as 10-step series, after one epoch of the random-weight `tiny` "
    "encoder; fit quality is tested on series (tests/test_regression.py)"
)
#: Checks that cannot apply to an estimator of series, and why.
EXPECTED_FAILED_CHECKS = {
    "check_n_features_in": f"no `n_features_in_`: {_ANY_LENGTH}",
    "check_n_features_in_after_fitting": f"no `n_features_in_` nor its error at predict: {_ANY_LENGTH}",
    "check_fit2d_1feature": "a 1-step series has no patch nor chart; its error speaks of time steps, not features",
    "check_estimators_empty_data_messages": "0-step series are refused in terms of time steps, not features",
    "check_regressors_train": _SCORE,
    "check_regressors_train(readonly_memmap=True)": _SCORE,
    "check_regressors_train(readonly_memmap=True,X_dtype=float32)": _SCORE,
}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Dozens of tiny fits: one torch thread each (on a busy 2-core machine two threads made them 15x slower)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def expected_failed_checks(estimator: TimesCLIPRegressor) -> dict[str, str]:
    return EXPECTED_FAILED_CHECKS


@parametrize_with_checks([TimesCLIPRegressor(**FAST)], expected_failed_checks=expected_failed_checks, xfail_strict=True)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


# ---------------------------------------------------------------------------------------------- conventions
def series(n: int = 12, length: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, length)).cumsum(axis=1)
    return X, X[:, -3:].mean(axis=1) - X[:, :3].mean(axis=1)


def test_every_parameter_is_explicit_and_stored_unchanged():
    encoder_params = dict(ENCODER)
    regressor = TimesCLIPRegressor(encoder_params=encoder_params, n_epochs=1, lr=0.5)
    assert regressor.encoder_params is encoder_params and regressor.get_params()["lr"] == 0.5
    assert set(regressor.get_params()) == {
        "encoder",
        "encoder_params",
        "freeze_encoder",
        "finetune_epochs",
        "finetune_lr",
        "alignment_weight",
        "hidden_size",
        "head_dropout",
        "n_epochs",
        "batch_size",
        "lr",
        "weight_decay",
        "validation_fraction",
        "patience",
        "random_state",
        "device",
        "verbose",
    }
    assert not [name for name in vars(regressor) if name.endswith("_")]  # nothing fitted in __init__
    copy = clone(regressor).set_params(encoder_params={**ENCODER, "use_vision": False})
    assert regressor.encoder_params == ENCODER and copy.encoder_params["use_vision"] is False
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'backbone'"):
        TimesCLIPRegressor(backbone="tiny")  # the encoder's settings are one argument, `encoder_params`


def test_fit_returns_self_without_changing_its_parameters():
    X, y = series()
    encoder_params = dict(ENCODER)
    regressor = TimesCLIPRegressor(encoder_params=encoder_params, n_epochs=1, random_state=0)
    assert regressor.fit(X, y) is regressor
    assert encoder_params == ENCODER and regressor.encoder_params is encoder_params
    fitted = sorted(name for name in vars(regressor) if name.endswith("_") and not name.startswith("_"))
    assert fitted == [
        "head_",
        "history_",
        "level_mean_",
        "level_scale_",
        "n_targets_",
        "n_variates_",
        "network_",
        "y_mean_",
        "y_ndim_",
        "y_scale_",
    ]


def test_a_2d_array_is_a_collection_of_univariate_series():
    X, y = series()
    flat = TimesCLIPRegressor(**FAST).fit(X, y)
    assert flat.n_variates_ == 1
    expected = TimesCLIPRegressor(**FAST).fit(X[:, :, None], y).predict(X[:4, :, None])
    np.testing.assert_array_equal(flat.predict(X[:4]), expected)  # [n, L] is [n, L, 1]
    np.testing.assert_array_equal(flat.predict([row for row in X[:4]]), expected)  # and a list of 1-D series
    with pytest.raises(ValueError, match=r"got \[10\]\. Reshape your data: `X\[None, :\]` is one univariate series"):
        flat.predict(X[0])


@pytest.mark.parametrize("make", [scipy.sparse.csr_matrix, scipy.sparse.csr_array, scipy.sparse.coo_matrix])
def test_sparse_input_is_refused_naming_the_parameter(make):
    X, y = series()
    with pytest.raises(TypeError, match=r"`X` is a sparse \w+; TimesCLIPRegressor reads dense series: pass"):
        TimesCLIPRegressor(**FAST).fit(make(X), y)
    with pytest.raises(TypeError, match=r"`y` is a sparse \w+; pass dense targets"):
        TimesCLIPRegressor(**FAST).fit(X, make(y[:, None]))


@pytest.mark.parametrize(
    ("X", "y", "error", "message"),
    [
        (np.ones((4, 10)) * 1j, np.ones(4), ValueError, r"`X` holds complex values\. Complex data not supported"),
        (np.ones((4, 10)), np.ones(4) * 1j, ValueError, r"`y` holds complex values\. Complex data not supported"),
        (np.full((4, 10), "a", dtype=object), np.ones(4), TypeError, r"`X` must hold numbers: could not convert"),
        (np.ones((4, 10)), None, ValueError, r"`y` is None: TimesCLIPRegressor requires y to be passed"),
        (np.ones((4, 10, 2, 1)), np.ones(4), ValueError, r"`X` as an array must have shape \[n_samples, length\]"),
    ],
)
def test_bad_arrays_are_named(X, y, error, message):
    with pytest.raises(error, match=message):
        TimesCLIPRegressor(**FAST).fit(X, y)


def test_tags_declare_series_input_and_several_targets():
    tags = get_tags(TimesCLIPRegressor())
    assert tags.estimator_type == "regressor"
    assert tags.input_tags.two_d_array and tags.input_tags.three_d_array
    assert not tags.input_tags.sparse and not tags.input_tags.allow_nan
    assert tags.target_tags.single_output and tags.target_tags.multi_output and tags.target_tags.required
