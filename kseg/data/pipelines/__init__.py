"""Input pipelines: ground truth molded to the model's inputs (resize, pad, mini-masks),
augmentation (Keras layers, imgaug-style augmenters by duck typing), the Keras
`PyDataset` sequences and the `tf.data` pipelines of Mask R-CNN and the semantic models.

May import: kseg.config, kseg.ops (anchors and boxes), kseg.utils, the other kseg.data
modules (never kseg.models, kseg.cli or anything above).
"""
