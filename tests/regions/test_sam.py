"""sam / sam2 backends: checkpoint errors, and the real generators on tiny random models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clusterlens.regions import cluster_image
from clusterlens.regions.sam import CheckpointNotFoundError, load_sam, load_sam2

# `make test` installs the sam extra (segment-anything and sam2 from PyPI, CPU is enough);
# a skip means this environment was installed without it.
NOT_INSTALLED = "{} is not installed: pip install -e '.[sam]' (make test installs it)"

SMALL_GENERATOR = {
    "points_per_side": 2,
    "pred_iou_thresh": 0.0,
    "stability_score_thresh": 0.0,
    "crop_n_layers": 0,
    "min_mask_region_area": 0,
}


def tiny_sam():
    modeling = pytest.importorskip(
        "segment_anything.modeling", reason=NOT_INSTALLED.format("segment-anything")
    )
    torch.manual_seed(0)
    size, patch = 64, 16
    return modeling.Sam(
        image_encoder=modeling.ImageEncoderViT(
            img_size=size, patch_size=patch, embed_dim=32, depth=1, num_heads=2, out_chans=16
        ),
        prompt_encoder=modeling.PromptEncoder(
            embed_dim=16,
            image_embedding_size=(size // patch, size // patch),
            input_image_size=(size, size),
            mask_in_chans=4,
        ),
        mask_decoder=modeling.MaskDecoder(
            num_multimask_outputs=3,
            transformer=modeling.TwoWayTransformer(
                depth=1, embedding_dim=16, mlp_dim=32, num_heads=2
            ),
            transformer_dim=16,
            iou_head_depth=1,
            iou_head_hidden_dim=16,
        ),
    ).eval()


def tiny_sam2():
    build = pytest.importorskip("sam2.build_sam", reason=NOT_INSTALLED.format("sam2"))
    torch.manual_seed(0)
    # The real Hiera-tiny config shrunk by overrides (the image size stays 1024: the
    # predictor assumes it).
    overrides = [
        "++model.image_encoder.trunk.embed_dim=8",
        "++model.image_encoder.trunk.num_heads=1",
        "++model.image_encoder.trunk.stages=[1,1,2,1]",
        "++model.image_encoder.trunk.global_att_blocks=[3]",
        "++model.image_encoder.neck.backbone_channel_list=[64,32,16,8]",
        "++model.image_encoder.neck.d_model=32",
        "++model.image_encoder.neck.position_encoding.num_pos_feats=32",
        "++model.memory_attention.d_model=32",
        "++model.memory_attention.num_layers=1",
        "++model.memory_attention.layer.d_model=32",
        "++model.memory_attention.layer.dim_feedforward=32",
        "++model.memory_attention.layer.self_attention.embedding_dim=32",
        "++model.memory_attention.layer.cross_attention.embedding_dim=32",
        "++model.memory_attention.layer.cross_attention.kv_in_dim=16",
        "++model.memory_encoder.out_dim=16",
        "++model.memory_encoder.position_encoding.num_pos_feats=16",
        "++model.memory_encoder.fuser.layer.dim=32",
        "++model.memory_encoder.fuser.num_layers=1",
        "++model.memory_encoder.in_dim=32",
    ]
    return build.build_sam2(
        "configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu", hydra_overrides_extra=overrides
    )


def test_missing_checkpoints_raise_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("CLUSTERLENS_SAM_CHECKPOINT", raising=False)
    monkeypatch.delenv("CLUSTERLENS_SAM2_CHECKPOINT", raising=False)
    with pytest.raises(CheckpointNotFoundError, match="needs a checkpoint"):
        load_sam()
    with pytest.raises(CheckpointNotFoundError, match="not found at .*nowhere.pth"):
        load_sam(tmp_path / "nowhere.pth")
    monkeypatch.setenv("CLUSTERLENS_SAM2_CHECKPOINT", str(tmp_path / "sam2.1_hiera_tiny.pt"))
    with pytest.raises(CheckpointNotFoundError, match=r"\$CLUSTERLENS_SAM2_CHECKPOINT"):
        load_sam2()
    with pytest.raises(FileNotFoundError):  # through the registry, too
        cluster_image(np.zeros((8, 8, 3)), method="sam", checkpoint=tmp_path / "x.pth")
    with pytest.raises(ValueError, match="model_type"):
        load_sam(tmp_path / "x.pth", model_type="vit_xl")


def test_sam2_config_is_inferred_from_the_file_name(tmp_path):
    odd = tmp_path / "my_weights.pt"
    odd.write_bytes(b"")
    with pytest.raises(ValueError, match="cannot tell the SAM2 size"):
        load_sam2(odd)


def test_sam_backend_runs_the_real_generator_on_a_tiny_model():
    image = np.random.default_rng(0).random((48, 40, 3)).astype(np.float32)
    first = cluster_image(image, method="sam", model=tiny_sam(), **SMALL_GENERATOR)
    second = cluster_image(image, method="sam", model=tiny_sam(), **SMALL_GENERATOR)
    assert first.shape == (48, 40)
    assert first.n_clusters >= 1
    assert (first.labels == second.labels).all()  # deterministic end to end
    assert first.meta["options"]["points_per_side"] == 2


@pytest.mark.slow
def test_sam2_backend_runs_the_real_generator_on_a_tiny_model():
    image = np.random.default_rng(0).random((48, 40, 3)).astype(np.float32)
    cmap = cluster_image(image, method="sam2", model=tiny_sam2(), **SMALL_GENERATOR)
    assert cmap.shape == (48, 40)
    assert cmap.counts.sum() == 48 * 40


class ShellPayload:
    """Unpickling this runs ``touch MARKER``: what a hostile checkpoint would carry."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("loader", ["sam", "sam2"])
def test_a_checkpoint_that_could_run_code_is_refused(tmp_path, loader):
    marker = tmp_path / "marker"
    path = tmp_path / ("sam_vit_b.pth" if loader == "sam" else "sam2.1_hiera_tiny.pt")
    torch.save({"model": {"weight": ShellPayload(marker)}}, path)
    load = load_sam if loader == "sam" else load_sam2
    with pytest.raises(ValueError, match="refused to load .* could run code"):
        load(path)
    assert not marker.exists()


def test_an_unreadable_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "sam2.1_hiera_tiny.pt"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not a readable torch checkpoint"):
        load_sam2(path)
    torch.save({"weights": torch.zeros(2)}, path)  # a torch file, but not SAM2's layout
    with pytest.raises(ValueError, match="has no 'model' entry"):
        load_sam2(path)


def test_sam_weights_load_safely_and_must_fit(tmp_path, monkeypatch):
    registry = pytest.importorskip(
        "segment_anything", reason=NOT_INSTALLED.format("segment-anything")
    ).sam_model_registry
    monkeypatch.setitem(registry, "vit_b", lambda checkpoint=None: tiny_sam())
    trained = tiny_sam()
    with torch.no_grad():
        trained.mask_decoder.iou_token.weight.fill_(0.5)  # differs from a fresh build
    torch.save(trained.state_dict(), tmp_path / "sam_vit_b.pth")
    loaded = load_sam(tmp_path / "sam_vit_b.pth")
    assert torch.equal(loaded.mask_decoder.iou_token.weight, trained.mask_decoder.iou_token.weight)
    torch.save({"image_encoder.nonsense": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="does not fit sam:vit_b"):
        load_sam(tmp_path / "other.pth")
