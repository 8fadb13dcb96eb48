"""How the forecast and alignment losses combine into the training objective, and the names they are logged under.

Both wrappers log, per stage (``train``, ``val``):

- ``{stage}_loss``: the forecast loss alone, as Darts and pytorch-forecasting log it for every model (their own
  step logs it); what early stopping, checkpoint selection and plateau schedulers watch;
- ``{stage}_forecast_loss``: the same value, beside its siblings;
- ``{stage}_alignment_loss``: the contrastive loss between the two views (with alignment);
- ``{stage}_total_loss``: what is optimised, ``forecast + alignment_weight * alignment`` (with
  ``alignment_weight="auto"``, the uncertainty-weighted sum);
- ``{stage}_alignment_weight``: with ``alignment_weight="auto"``, the alignment's learnt weight relative to the
  forecast's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from darts_timesclip.network.heads import UncertaintyWeighting


@dataclass
class TimesCLIPLosses:
    """The losses of one training or validation step.

    Attributes
    ----------
    total
        What is optimised: ``forecast + alignment_weight * alignment`` (the forecast loss without alignment).
    logged
        Name -> detached value: ``{stage}_forecast_loss``, ``{stage}_alignment_loss`` (with alignment) and
        ``{stage}_total_loss``. ``{stage}_loss`` (the forecast loss) is logged by the wrapper's base class.
    """

    total: torch.Tensor
    logged: dict[str, torch.Tensor]


def combine_losses(
    forecast_loss: torch.Tensor,
    alignment_loss: torch.Tensor | None,
    alignment_weight: float | UncertaintyWeighting,
    stage: str,
) -> TimesCLIPLosses:
    """Combine a step's losses and name them for logging.

    Parameters
    ----------
    forecast_loss
        The wrapper's forecast loss (its ``loss_fn`` / likelihood / metric).
    alignment_loss
        :attr:`TimesCLIPOutput.alignment_loss`, ``None`` without alignment.
    alignment_weight
        Weight of the alignment loss (:attr:`TimesCLIPConfig.alignment_weight`), or the network's learnt
        :class:`~darts_timesclip.network.heads.UncertaintyWeighting` (``"auto"``).
    stage
        ``"train"`` or ``"val"``.
    """
    total = forecast_loss
    logged = {f"{stage}_forecast_loss": forecast_loss.detach()}
    if alignment_loss is not None:
        logged[f"{stage}_alignment_loss"] = alignment_loss.detach()
        if isinstance(alignment_weight, UncertaintyWeighting):
            total, relative = alignment_weight(forecast_loss, alignment_loss)
            logged[f"{stage}_alignment_weight"] = relative
        else:
            total = forecast_loss + alignment_weight * alignment_loss
    logged[f"{stage}_total_loss"] = total.detach()
    return TimesCLIPLosses(total, logged)
