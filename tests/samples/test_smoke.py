"""samples/smoke/smoke.py: config, the grouped FSS split, training lowers the loss."""

from pathlib import Path

import numpy as np
from sample_module import load_sample

smoke = load_sample("smoke")


def test_config_defaults_are_valid():
    config = smoke.SmokeConfig()
    assert config.NUM_CLASSES == 2 and config.OUTPUT_ACTIVATION == "sigmoid"
    assert config.BACKBONE is None and config.LOSS == "ce+dice"


def test_split_keeps_tiles_of_a_photo_together(smoke_dir):
    train, val = smoke.load_smoke_datasets(smoke_dir)
    assert (len(train.image_ids), len(val.image_ids)) == (492, 123)

    def photos(dataset):
        return {Path(info["path"]).stem.split("_")[0] for info in dataset.image_info}

    assert not photos(train) & photos(val)
    again = smoke.load_smoke_datasets(smoke_dir)[1]
    assert [i["path"] for i in again.image_info] == [i["path"] for i in val.image_info]


def test_few_steps_on_fss_lower_the_loss(smoke_dir):
    from kseg.data.pipelines.semantic_pipeline import SemanticSequence
    from kseg.models.unet import build_unet
    from kseg.semantic.train import compile_semantic

    config = smoke.SmokeConfig(IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64, UNET_BASE_FILTERS=8,
                               UNET_DEPTH=3, IMAGES_PER_GPU=4)
    train, _ = smoke.load_smoke_datasets(smoke_dir)
    images, class_maps = SemanticSequence(train, config, shuffle=False)[0]
    assert class_maps.any()
    model = compile_semantic(build_unet(config), config)
    losses = [model.train_on_batch(images, class_maps, return_dict=True)["loss"]
              for _ in range(12)]
    assert np.mean(losses[-3:]) < 0.92 * losses[0], losses  # CE falls; Dice slowly


def test_cli_train_on_generated_scenes(tmp_path):
    history, results = smoke.main(["train", "--epochs", "1", "--steps", "2", "--image-size",
                                   "64", "--logs", str(tmp_path)])
    assert np.isfinite(history.history["loss"][0])
    assert results["class_names"] == ["BG", "smoke"] and results["num_images"] == 40
    assert len(list(history.log_dir.glob("kseg_smoke_*.weights.h5"))) == 1
