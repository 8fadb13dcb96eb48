"""The layers import on their own: the torch core needs neither Darts nor Lightning, the adapter no Darts.

Each check runs in a fresh interpreter where importing the forbidden packages fails.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests._extras import requires

BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is blocked in this test")
        return None

sys.meta_path.insert(0, Block())
"""


def _run(code: str, blocked: tuple[str, ...]) -> subprocess.CompletedProcess:
    script = BLOCKER.format(blocked=set(blocked)) + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


def test_network_and_backbones_import_without_darts_or_lightning():
    result = _run(
        """
        import torch
        from darts_timesclip.network import TimesCLIPConfig, TimesCLIPNetwork
        from darts_timesclip.backbones import resolve_backbone
        net = TimesCLIPNetwork(TimesCLIPConfig(24, 6, n_targets=2, backbone="tiny", patch_length=8, patch_stride=4))
        out = net(torch.randn(3, 24, 2), return_alignment=True)
        assert out.prediction.shape == (3, 6, 2, 1) and out.alignment_loss is not None
        from darts_timesclip.vq import VQTransformerConfig, VQTransformerNetwork
        vq = VQTransformerNetwork(VQTransformerConfig(24, 6, n_targets=2, codebook_size=8, d_model=16, n_heads=2))
        assert vq(torch.randn(3, 24, 2)).shape == (3, 6, 2, 1)
        print("ok")
        """,
        blocked=("darts", "pytorch_lightning", "lightning", "pytorch_forecasting"),
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_package_top_level_is_lazy():
    result = _run(
        """
        import sys
        import darts_timesclip
        assert "torch" not in sys.modules, "importing the package loaded torch"
        from darts_timesclip.pretraining import DEFAULT_OBJECTIVE, OBJECTIVES
        assert DEFAULT_OBJECTIVE in OBJECTIVES and "torch" not in sys.modules, "the objectives' names loaded torch"
        from darts_timesclip import TimesCLIPConfig
        assert TimesCLIPConfig.__module__ == "darts_timesclip.network.config"
        try:
            darts_timesclip.TimesCLIPModel
        except ImportError as err:
            assert "darts" in str(err)
        else:
            raise AssertionError("TimesCLIPModel needs Darts")
        print("ok")
        """,
        blocked=("darts", "pytorch_lightning", "lightning"),
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_unknown_top_level_name_is_an_attribute_error():
    import darts_timesclip

    with pytest.raises(AttributeError, match="has no attribute 'TimesClipModel'"):
        darts_timesclip.TimesClipModel  # noqa: B018


def test_both_lazy_packages_list_their_public_names_and_cache_them_once_imported():
    import darts_timesclip
    import darts_timesclip.pretraining as pretraining

    for package in (darts_timesclip, pretraining):
        assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError, match="'darts_timesclip.pretraining' has no attribute 'Pretrainer'"):
        pretraining.Pretrainer  # noqa: B018
    objectives = pretraining.OBJECTIVES
    assert vars(pretraining)["OBJECTIVES"] is objectives  # cached: the next look-up is a plain attribute


def test_pytorch_forecasting_adapter_imports_without_darts():
    requires("pytorch_forecasting", "pytorch-forecasting")
    result = _run(
        """
        from darts_timesclip.adapters.pytorch_forecasting import TimesCLIP
        print(TimesCLIP.__name__)
        """,
        blocked=("darts", "pytorch_lightning"),
    )
    assert result.returncode == 0 and result.stdout.strip() == "TimesCLIP", result.stderr


def test_safe_globals_are_registered_where_the_darts_model_is_defined():
    result = _run(
        """
        import darts_timesclip.network
        from darts.utils.serialization.registry import get_safe_globals
        names = {getattr(g, "__name__", "") for g in get_safe_globals()}
        assert "TimesCLIPModel" not in names, "importing the network registered the Darts model"
        import darts_timesclip.model
        names = {getattr(g, "__name__", "") for g in get_safe_globals()}
        assert {"TimesCLIPModel", "TimesCLIPConfig"} <= names, names
        print("ok")
        """,
        blocked=(),
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
