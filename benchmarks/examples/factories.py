"""Models of one's own for ``python -m benchmarks run --model [NAME=]package.module:factory``.

A factory is a function that returns an untrained Darts global forecasting model. The suite calls it once per job
with, by keyword, those of these arguments its signature names (all of them with ``**kwargs``):

``input_chunk_length``
    The job's lookback ``L`` (the protocol's, 96 by default); the model must use it.
``output_chunk_length``
    The job's horizon ``H``.
``random_state``
    The job's seed.
``pl_trainer_kwargs``
    For a torch model: the Lightning trainer arguments of the protocol (its callbacks, which restore the best
    validation epoch's weights, log each epoch and checkpoint it for a resume; the accelerator; the progress bar;
    ``max_steps`` under a step cap). Pass them on to the model unchanged; add callbacks of your own to the list.
    A factory of a model without Lightning (``LinearRegressionModel``, ...) leaves this argument out.

The suite then trains the model on the train split with the validation split for early stopping and best-epoch
restore (``fit(train, val_series=val)``; ``--max-epochs`` and ``--max-samples-per-ts`` cap it), scores every test
window with ``historical_forecasts(retrain=False)`` on the standardised scale, writes one result file per job, and
puts the published numbers beside ours in ``results.md`` where ``NAME`` is a published model's (``dlinear``,
``patchtst``, ...). The run id covers the factory's name and its source code: edit the factory and its jobs run
anew. For example::

    python -m benchmarks run --datasets ETTh1 --horizons 96 --model benchmarks.examples.factories:tide \
        --output outputs/own
    python -m benchmarks run --tier quick --model dlinear=benchmarks.examples.factories:dlinear --output outputs/own
"""

from __future__ import annotations

from typing import Any

from darts.models import DLinearModel, TiDEModel


def tide(
    input_chunk_length: int, output_chunk_length: int, random_state: int, pl_trainer_kwargs: dict[str, Any]
) -> TiDEModel:
    """A small TiDE (Darts' defaults, one encoder and decoder layer, reversible instance norm), 10 epochs.

    Parameters
    ----------
    input_chunk_length, output_chunk_length, random_state, pl_trainer_kwargs
        As the suite passes them (see the module docstring).

    Returns
    -------
    TiDEModel
        The untrained model.
    """
    return TiDEModel(
        input_chunk_length=input_chunk_length,
        output_chunk_length=output_chunk_length,
        num_encoder_layers=1,
        num_decoder_layers=1,
        hidden_size=128,
        dropout=0.1,
        use_reversible_instance_norm=True,
        batch_size=32,
        n_epochs=10,
        optimizer_kwargs={"lr": 1e-3},
        random_state=random_state,
        pl_trainer_kwargs=pl_trainer_kwargs,
    )


def dlinear(input_chunk_length: int, output_chunk_length: int, **kwargs: Any) -> DLinearModel:
    """DLinear as Time-Series-Library's L = 96 scripts train it (one layer shared by the variates, rate 1e-4,
    batch 32, 10 epochs); named ``dlinear`` its rows get the published DLinear numbers beside them.

    Parameters
    ----------
    input_chunk_length, output_chunk_length
        The lookback and horizon.
    **kwargs
        ``random_state`` and ``pl_trainer_kwargs``, passed on as the suite gives them.

    Returns
    -------
    DLinearModel
        The untrained model.
    """
    return DLinearModel(
        input_chunk_length=input_chunk_length,
        output_chunk_length=output_chunk_length,
        shared_weights=True,
        const_init=True,
        kernel_size=25,
        use_static_covariates=False,
        batch_size=32,
        n_epochs=10,
        optimizer_kwargs={"lr": 1e-4},
        **kwargs,
    )
