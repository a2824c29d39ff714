"""Named channel layouts.

``mvp13`` is seed 02's 13-channel MVP, in its order: RGB, L* and a*, Sobel x/y/
magnitude, position (y, x), eccentricity, saliency, luminance.

``full40`` is seed 01's 40-channel layout. The seed fixes cluster channels at slots
12-14, the embedding at 18-33 and saliency at 8; the slots it leaves undefined are
filled as documented below (and in ``docs/texture.md``) with channels that earn
their place: the rest of LAB, entropy, local contrast, the Laplacian and HSV.

| slots | channels |
|---|---|
| 0-2 | red, green, blue |
| 3-5 | pos_x, pos_y, eccentricity |
| 6-7 | sobel_x, sobel_y |
| 8 | saliency |
| 9 | sobel_mag |
| 10 | luminance |
| 11 | entropy |
| 12-14 | cluster_id, cluster_dist, cluster_size |
| 15-17 | lab_l, lab_a, lab_b |
| 18-33 | embed_00 ... embed_15 |
| 34 | local_contrast |
| 35 | laplacian |
| 36-39 | hue_cos, hue_sin, saturation, value |
"""

from __future__ import annotations

MVP13: tuple[str, ...] = (
    "red", "green", "blue",
    "lab_l", "lab_a",
    "sobel_x", "sobel_y", "sobel_mag",
    "pos_y", "pos_x", "eccentricity",
    "saliency", "luminance",
)  # fmt: skip

FULL40: tuple[str, ...] = (
    "red", "green", "blue",
    "pos_x", "pos_y", "eccentricity",
    "sobel_x", "sobel_y",
    "saliency",
    "sobel_mag",
    "luminance",
    "entropy",
    "cluster_id", "cluster_dist", "cluster_size",
    "lab_l", "lab_a", "lab_b",
    *(f"embed_{i:02d}" for i in range(16)),
    "local_contrast",
    "laplacian",
    "hue_cos", "hue_sin", "saturation", "value",
)  # fmt: skip

PRESETS: dict[str, tuple[str, ...]] = {"mvp13": MVP13, "full40": FULL40}


def preset_channels(name: str) -> tuple[str, ...]:
    """The channel names of a preset, or a ValueError listing the presets."""
    if name not in PRESETS:
        raise ValueError(f"unknown texture preset {name!r}; available: {sorted(PRESETS)}")
    return PRESETS[name]
