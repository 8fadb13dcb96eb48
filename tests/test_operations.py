"""Training operations through Darts: early stopping on the forecast loss, checkpoints (best and last), TensorBoard
logs under our loss names, resuming an interrupted fit."""

from __future__ import annotations

import struct

import numpy as np
import pytorch_lightning as pl
import torch
from darts.utils.serialization import safe_globals
from pytorch_lightning.callbacks import EarlyStopping

from darts_timesclip import TimesCLIPModel
from tests._helpers import make_series, model_kwargs


class StopAfter(pl.Callback):
    """Interrupt training after ``epochs`` epochs, as a killed job would have."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch + 1 == self.epochs:  # once: it travels in the checkpoint and comes back
            trainer.should_stop = True


def _split():
    series = make_series(160, n_components=2)
    return series[:120], series[120 - 24 :]


def test_early_stopping_watches_the_forecast_loss(quiet_trainer):
    train, val = _split()
    # no improvement can reach min_delta, so training stops after 1 + patience epochs, whatever the losses
    stopper = EarlyStopping(monitor="val_loss", patience=1, min_delta=1e9, mode="min")
    model = TimesCLIPModel(**model_kwargs(n_epochs=10, pl_trainer_kwargs={**quiet_trainer, "callbacks": [stopper]}))
    model.fit(train, val_series=val)
    assert model.epochs_trained == 2
    metrics = model.trainer.callback_metrics
    assert float(metrics["val_loss"]) == float(metrics["val_forecast_loss"])  # what early stopping watches
    assert float(metrics["val_total_loss"]) > float(metrics["val_loss"])  # the alignment term is not in it


class RecordEpochs(pl.Callback):
    """Each epoch's validation loss and network weights (as the checkpoint of that epoch holds them); the weights of
    the last epoch spoilt before its validation, so that the last epoch is not the best."""

    def __init__(self, epochs: int) -> None:
        self.epochs, self.val_loss, self.weights = epochs, [], []

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch + 1 == self.epochs and not trainer.sanity_checking:
            with torch.no_grad():
                pl_module.network.generator.linear.weight.mul_(50.0)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.val_loss.append(float(trainer.callback_metrics["val_loss"]))
            self.weights.append({k: v.detach().clone() for k, v in pl_module.network.state_dict().items()})


def test_checkpoints_best_and_last(tmp_path, quiet_trainer):
    train, val = _split()
    record = RecordEpochs(3)
    kwargs = model_kwargs(n_epochs=3, save_checkpoints=True, model_name="ops", work_dir=str(tmp_path))
    kwargs["pl_trainer_kwargs"] = {**quiet_trainer, "callbacks": [record]}
    model = TimesCLIPModel(**kwargs, force_reset=True)
    model.fit(train, val_series=val)
    expected = model.predict(6, train, verbose=False)

    with safe_globals([RecordEpochs]):  # the trainer's callbacks travel in the checkpoint
        last = TimesCLIPModel.load_from_checkpoint("ops", work_dir=str(tmp_path), best=False)
        best = TimesCLIPModel.load_from_checkpoint("ops", work_dir=str(tmp_path), best=True)
    np.testing.assert_array_equal(last.predict(6, train, verbose=False).values(), expected.values())
    assert last.config == model.config

    best_epoch = int(np.argmin(record.val_loss))
    assert len(record.val_loss) == 3 and best_epoch < 2, record.val_loss  # the spoilt last epoch is not the best
    names = sorted(p.name for p in (tmp_path / "ops" / "checkpoints").iterdir())
    assert "last-epoch=2.ckpt" in names and any(n.startswith(f"best-epoch={best_epoch}-") for n in names), names
    loaded = best.model.network.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in record.weights[best_epoch].items())  # that epoch's weights
    assert not torch.equal(loaded["generator.linear.weight"], record.weights[-1]["generator.linear.weight"])


def _scalar_tags(log_dir) -> set[str]:
    """Tags of the scalars in TensorBoard event files (TFRecord framing, tensorboardX's protobuf)."""
    from tensorboardX.proto import event_pb2

    tags = set()
    for path in log_dir.rglob("events.out.tfevents.*"):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
            offset += 12 + length + 4
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_tensorboard_logs_carry_our_loss_names(tmp_path):
    train, val = _split()
    kwargs = model_kwargs(n_epochs=1, log_tensorboard=True, model_name="tb", work_dir=str(tmp_path))
    kwargs["pl_trainer_kwargs"].pop("logger")
    kwargs["pl_trainer_kwargs"]["log_every_n_steps"] = 1  # training losses are step-level, as in Darts' own models
    TimesCLIPModel(**kwargs).fit(train, val_series=val)
    tags = _scalar_tags(tmp_path / "tb" / "logs")
    for stage in ("train", "val"):
        assert {f"{stage}_loss", f"{stage}_forecast_loss", f"{stage}_alignment_loss", f"{stage}_total_loss"} <= tags


def test_an_interrupted_fit_resumes_from_its_last_checkpoint(tmp_path, quiet_trainer):
    train, val = _split()
    common = dict(n_epochs=4, save_checkpoints=True, work_dir=str(tmp_path))

    whole = TimesCLIPModel(**model_kwargs(model_name="whole", **common))
    whole.fit(train, val_series=val)

    cut = model_kwargs(model_name="cut", **common)
    cut["pl_trainer_kwargs"] = {**quiet_trainer, "callbacks": [StopAfter(2)]}
    TimesCLIPModel(**cut).fit(train, val_series=val)
    with safe_globals([StopAfter]):  # the trainer's callbacks travel in the checkpoint
        resumed = TimesCLIPModel.load_from_checkpoint("cut", work_dir=str(tmp_path), best=False)
    resumed.fit(train, val_series=val, epochs=4)  # Darts resumes from the loaded checkpoint (optimizer, schedule)

    assert resumed.epochs_trained == 4
    assert str(resumed.trainer.ckpt_path).endswith("last-epoch=1.ckpt")  # Lightning restored the interrupted run
    assert resumed.trainer.global_step == whole.trainer.global_step  # 2 + 2 epochs of steps, not 4 fresh ones
    # (not bit-identical to the uninterrupted run: the data order and dropout draw from RNG states not checkpointed)


def test_cpu_ddp_trains_and_a_single_device_trainer_predicts(quiet_trainer, monkeypatch):
    """``strategy="ddp_spawn"`` on 2 CPU processes (gloo): the weights come back trained; predictions then run on one
    device (a distributed sampler cannot split one prediction window over two ranks)."""
    import torch

    # Lightning's DDP sets the rendezvous port in this process's environment: recorded here (set, then unset) so that
    # it is put back as it was after the test
    monkeypatch.setenv("MASTER_PORT", "0")
    monkeypatch.delenv("MASTER_PORT")

    series = make_series(120, n_components=2)
    ddp = TimesCLIPModel(**model_kwargs(pl_trainer_kwargs={**quiet_trainer, "strategy": "ddp_spawn", "devices": 2}))
    ddp.fit(series, val_series=series[-31:])  # two validation windows: one per rank
    untrained = TimesCLIPModel(**model_kwargs(pl_trainer_kwargs={**quiet_trainer, "max_steps": 0}))
    untrained.fit(series)  # same seed, same initial weights, no step
    trained_state, initial_state = ddp.model.network.state_dict(), untrained.model.network.state_dict()
    head = "generator.linear.weight"
    assert not torch.equal(trained_state[head], initial_state[head])
    # the logged validation loss is averaged over the ranks: the mean over both windows, not rank 0's window alone
    windows = torch.as_tensor(series[-31:].values()).unfold(0, 30, 1).permute(0, 2, 1)  # [2, 30, 2]
    with torch.no_grad():
        prediction = ddp.model.network.eval()(windows[:, :24]).prediction[..., 0]
    per_window = ((prediction - windows[:, 24:]) ** 2).mean(dim=(1, 2))
    assert not torch.isclose(per_window[0], per_window[1])
    torch.testing.assert_close(ddp.trainer.callback_metrics["val_loss"], per_window.mean(), rtol=1e-5, atol=1e-7)
    single = pl.Trainer(**quiet_trainer, devices=1)
    forecast = ddp.predict(6, series, trainer=single, verbose=False)
    assert forecast.values().shape == (6, 2) and np.isfinite(forecast.values()).all()
