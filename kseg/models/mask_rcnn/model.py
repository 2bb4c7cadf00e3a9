"""`MaskRCNN`: Matterport's API (train, detect, load_weights, find_last) over Keras 3 models.

    model = MaskRCNN(mode="training", config=config, model_dir="logs")
    model.load_weights("mask_rcnn_coco.h5", by_name=True,
                       exclude=["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask"])
    model.train(dataset_train, dataset_val, learning_rate=config.LEARNING_RATE,
                epochs=1, layers="heads")
    model = MaskRCNN(mode="inference", config=config, model_dir="logs")
    model.load_weights(model.find_last(), by_name=True)
    results = model.detect([image])   # [{"rois", "class_ids", "scores", "masks"}]

Checkpoints are written by layer name in the Keras 2 HDF5 layout of
`mask_rcnn_coco.h5` (`mask_rcnn_<name>_<epoch>.h5`), so a training checkpoint
loads into an inference model and epoch numbering continues on resume.
"""

import os

from kseg import distribute
from kseg.distribute import jit_compile_setting  # noqa: F401  (public name kept here)
from kseg.models.mask_rcnn import checkpoints
from kseg.models.mask_rcnn.inference import detect_images
from kseg.models.mask_rcnn.trainable import LAYER_REGEX, set_trainable


class MaskRCNN:
    """Builds the training or inference model for a `MaskRCNNConfig`.

    Args:
        mode: "training" or "inference".
        config: a `MaskRCNNConfig`.
        model_dir: folder for logs and checkpoints (`model_dir/<name><timestamp>/`).
    """

    def __init__(self, mode, config, model_dir="logs"):
        if mode not in ("training", "inference"):
            raise ValueError(f"mode must be 'training' or 'inference', got {mode!r}")
        from kseg.models.mask_rcnn.graph import build_inference_model, build_training_model
        from kseg.models.mask_rcnn.training import MaskRCNNTrainingModel
        from kseg.models.optimizers import loss_weight_decay

        self.mode = mode
        self.config = config
        self.model_dir = os.fspath(model_dir)
        self.epoch = 0
        self.log_dir = None
        self.checkpoint_path = None
        # Training runs under the config's strategy and dtype policy; inference on one
        # device with the dtype policy.
        with distribute.scope(config, distribute=mode == "training"):
            if mode == "training":
                self.keras_model = build_training_model(config, MaskRCNNTrainingModel)
                self.keras_model.loss_weights = dict(config.LOSS_WEIGHTS)
                # SGD / Adam: Matterport's L2 term in the loss; AdamW decays in the optimizer.
                self.keras_model.weight_decay = loss_weight_decay(config)
                distribute.prepare_model(self.keras_model, config)
            else:
                self.keras_model = build_inference_model(config)
                jit = jit_compile_setting(config.JIT_COMPILE)
                if jit != "auto":  # predict steps with (or without) XLA
                    self.keras_model.jit_compile = jit

    # === Weights ===
    def load_weights(self, filepath, by_name=True, exclude=None, verbose=0):
        """Load a Matterport/kseg `.h5` by layer name (or a Keras `.weights.h5`).

        Returns the `LoadReport` (what was loaded, skipped and why). A kseg checkpoint
        path also sets the epoch counter and log directory, so training resumes.
        """
        filepath = os.fspath(filepath)
        if filepath.endswith(".weights.h5") and not by_name:
            from kseg.saving.files import load_weights_atomic

            load_weights_atomic(self.keras_model, filepath)
            report = None
        else:
            from kseg.saving.legacy_h5 import load_weights_by_name

            report = load_weights_by_name(self.keras_model, filepath, exclude=exclude or (),
                                          verbose=verbose)
        self.set_log_dir(filepath)
        return report

    def save_weights(self, filepath):
        """Write all weights by layer name in Matterport's HDF5 layout (atomically)."""
        return checkpoints.save_weights_by_name(self.keras_model, filepath)

    def get_imagenet_weights(self):
        """Path of the ImageNet ResNet50 weights (Keras' cache; downloads when online)."""
        from kseg import weights

        return weights.get("resnet50_imagenet")

    def find_last(self):
        """Path of the last checkpoint of the last run of this config's NAME."""
        return checkpoints.find_last(self.model_dir, self.config.NAME)

    def set_log_dir(self, model_path=None):
        """Start a new log dir, or continue the one of a kseg checkpoint path."""
        self.log_dir, self.epoch = checkpoints.log_dir_for(
            self.model_dir, self.config.NAME, model_path, self.epoch)
        self.checkpoint_path = os.path.join(
            self.log_dir, f"mask_rcnn_{self.config.NAME.lower()}_{{epoch:04d}}.h5")

    # === Training ===
    def compile(self, learning_rate, momentum=None):
        from kseg.models.optimizers import make_optimizer

        with distribute.scope(self.config, distribute=self.mode == "training"):
            optimizer = distribute.wrap_optimizer(
                make_optimizer(self.config, learning_rate, momentum, l2_in_loss=True),
                self.config)
            self.keras_model.compile(optimizer=optimizer, jit_compile=jit_compile_setting(
                self.config.JIT_COMPILE))
            # Create the optimizer's slots now: a TF train step that creates variables on
            # its first trace is traced twice (the whole Mask R-CNN graph, ~10 s on a CPU).
            self.keras_model.optimizer.build(self.keras_model.trainable_variables)

    def train(self, train_dataset, val_dataset, learning_rate, epochs, layers="all",
              augmentation=None, custom_callbacks=None, no_augmentation_sources=None,
              verbose=1, workers=1, cache=None):
        """Train `layers` ("heads", "3+", "4+", "5+", "all" or a regex) up to epoch `epochs`.

        Writes the run's `config.json` (with the dataset's CLASS_NAMES) in `log_dir` first.
        Datasets are kseg `Dataset`s (a keras PyDataset also works). `augmentation` is a
        Keras augmentation layer, an imgaug-style augmenter or an albumentations pipeline;
        images whose source is in `no_augmentation_sources` are not augmented. On the
        TensorFlow backend a kseg Dataset is fed through a tf.data pipeline (parallel
        per-image loading, prefetch, sharded under DISTRIBUTION); on JAX / PyTorch through
        `MaskRCNNSequence` with `workers` threads (processes when workers > 1).
        """
        assert self.mode == "training", "Create the model in training mode."
        from kseg.models.mask_rcnn.fit import fit_model

        if self.log_dir is None:
            self.set_log_dir()
        from kseg.saving.checkpoint import check_writable
        from kseg.utils.runs import write_run_config

        check_writable(self.log_dir)  # a clear error before anything is written
        write_run_config(self.config, self.log_dir, getattr(train_dataset, "class_names", None))
        regex = LAYER_REGEX.get(layers, layers)
        set_trainable(self.keras_model, regex, verbose=verbose > 1)
        self.compile(learning_rate, self.config.LEARNING_MOMENTUM)
        history = fit_model(self, train_dataset, val_dataset, epochs, augmentation,
                            custom_callbacks, verbose=verbose, workers=workers, cache=cache,
                            no_augmentation_sources=no_augmentation_sources)
        self.epoch = max(self.epoch, epochs)
        return history

    # === Inference ===
    def detect(self, images, verbose=0):
        """Detect instances in RGB images of any size and count.

        Returns one dict per image: `rois` [N, (y1, x1, y2, x2)] int32 pixels,
        `class_ids` [N] int32, `scores` [N] float32, `masks` [H, W, N] bool.
        """
        assert self.mode == "inference", "Create the model in inference mode."
        return detect_images(self.keras_model, self.config, images, verbose=verbose)

    def mold_inputs(self, images):
        """RGB images -> (molded_images [N, S, S, 3], image_metas [N, META], windows [N, 4])."""
        from kseg.models.mask_rcnn.inference import mold_inputs

        return mold_inputs(images, self.config)

    def unmold_detections(self, detections, mrcnn_mask, original_image_shape, image_shape,
                          window):
        """One image's padded model outputs -> (boxes, class_ids, scores, masks) in
        original pixels, as Matterport returns them (masks [H, W, N] bool)."""
        from kseg.models.mask_rcnn.inference import unmold_detections

        r = unmold_detections(detections, mrcnn_mask, original_image_shape, image_shape, window)
        return r["rois"], r["class_ids"], r["scores"], r["masks"]

    def detect_molded(self, molded_images, image_metas, verbose=0):
        """Detect on images already molded (e.g. by a data pipeline); results are in the
        molded image's pixels. Returns one dict per image as `detect` does."""
        assert self.mode == "inference", "Create the model in inference mode."
        import numpy as np

        from kseg.models.mask_rcnn.inference import unmold_detections

        molded_images = np.asarray(molded_images, np.float32)
        outputs = self.keras_model.predict_on_batch([molded_images, np.asarray(image_metas)])
        detections, masks = np.asarray(outputs[0]), np.asarray(outputs[3])
        shape = molded_images.shape[1:]
        window = (0, 0, shape[0], shape[1])
        results = [unmold_detections(detections[i], masks[i], shape, shape, window)
                   for i in range(len(molded_images))]
        if verbose:
            print(f"detect_molded: {len(results)} images")
        return results

    def get_anchors(self, image_shape=None):
        """Anchors [A, (y1, x1, y2, x2)] normalized, for IMAGE_SHAPE or `image_shape`."""
        from kseg.ops.anchors import config_anchors

        return config_anchors(self.config, image_shape, normalized=True)

    def run_graph(self, images, outputs, image_metas=None):
        """Named intermediate tensors on `images` (see `kseg.models.mask_rcnn.intermediates`):
        `model.run_graph([image], [("proposals", model.ancestor("ROI").output)])`."""
        assert self.mode == "inference", "run_graph runs the inference model."
        from kseg.models.mask_rcnn.intermediates import run_graph

        return run_graph(self.keras_model, self.config, images, outputs, image_metas)

    def get_trainable_layers(self):
        """Layers with weights (what `train(layers=...)` freezes or trains)."""
        from kseg.models.mask_rcnn.trainable import trainable_layers

        return trainable_layers(self.keras_model)

    def set_trainable(self, layer_regex, verbose=0):
        """Train the layers whose names match `layer_regex` (or "heads", "3+", ...)."""
        return set_trainable(self.keras_model, LAYER_REGEX.get(layer_regex, layer_regex),
                             verbose=verbose > 0)

    def ancestor(self, name):
        """The layer called `name` (Matterport's helper for notebooks)."""
        return self.keras_model.get_layer(name)

    def __repr__(self):
        return f"MaskRCNN(mode={self.mode!r}, config={self.config!r})"


__all__ = ["LAYER_REGEX", "MaskRCNN"]
