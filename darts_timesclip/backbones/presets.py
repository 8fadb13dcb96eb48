"""Named CLIP architectures: random-weight presets, and the published shapes of the OpenAI checkpoints.

A preset is a pair of ``CLIPVisionConfig`` / ``CLIPTextConfig`` keyword dictionaries. Presets have no pretrained
weights; they exist so that TimesCLIP runs on machines without the checkpoints or without a GPU. The OpenAI
shapes let ``pretrained=False`` build a full-size backbone with random weights without touching the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BackbonePreset:
    """Architecture of a CLIP vision tower and text tower.

    Attributes
    ----------
    name
        Registry name, e.g. ``"compact"``.
    vision
        Keyword arguments of ``transformers.CLIPVisionConfig``.
    text
        Keyword arguments of ``transformers.CLIPTextConfig``.
    description
        One line for the README's preset table.
    """

    name: str
    vision: dict[str, Any] = field(default_factory=dict)
    text: dict[str, Any] = field(default_factory=dict)
    description: str = ""


def _tower(hidden: int, layers: int, heads: int, **extra: Any) -> dict[str, Any]:
    return dict(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        **extra,
    )


#: Random-weight presets, sized for CPUs. ``tiny`` is for tests; ``compact`` is the CPU default.
PRESETS: dict[str, BackbonePreset] = {
    "tiny": BackbonePreset(
        name="tiny",
        vision=_tower(32, 2, 2, image_size=32, patch_size=8),
        text=_tower(
            32, 2, 2, max_position_embeddings=77, vocab_size=64, bos_token_id=62, eos_token_id=63, pad_token_id=1
        ),
        description="2-layer 32-wide towers, 32x32 charts; for tests",
    ),
    "compact": BackbonePreset(
        name="compact",
        vision=_tower(128, 4, 4, image_size=64, patch_size=8),
        text=_tower(
            128, 4, 4, max_position_embeddings=77, vocab_size=64, bos_token_id=62, eos_token_id=63, pad_token_id=1
        ),
        description="4-layer 128-wide towers, 64x64 charts; a CPU-sized TimesCLIP",
    ),
}

#: Shapes of the OpenAI checkpoints (their ``config.json``), for ``pretrained=False`` without a download.
KNOWN_ARCHITECTURES: dict[str, BackbonePreset] = {
    "openai/clip-vit-base-patch16": BackbonePreset(
        name="openai/clip-vit-base-patch16",
        vision=_tower(768, 12, 12, image_size=224, patch_size=16),
        text=_tower(512, 12, 8, max_position_embeddings=77, vocab_size=49408),
        description="ViT-B/16 (the paper's backbone)",
    ),
    "openai/clip-vit-base-patch32": BackbonePreset(
        name="openai/clip-vit-base-patch32",
        vision=_tower(768, 12, 12, image_size=224, patch_size=32),
        text=_tower(512, 12, 8, max_position_embeddings=77, vocab_size=49408),
        description="ViT-B/32",
    ),
    "openai/clip-vit-large-patch14": BackbonePreset(
        name="openai/clip-vit-large-patch14",
        vision=_tower(1024, 24, 16, image_size=224, patch_size=14),
        text=_tower(768, 12, 12, max_position_embeddings=77, vocab_size=49408),
        description="ViT-L/14",
    ),
}
