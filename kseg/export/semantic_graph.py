"""FCN / U-Net serving graph: `kseg.semantic.predict.predict_semantic` in TensorFlow.

Outputs of `serve(images [B, H, W, 3] uint8)`:
    class_map      [B, H, W] int32, argmax of `probabilities`
    probabilities  [B, H, W, K] float32 at the original size (K = NUM_CLASSES; a
                   1-channel sigmoid model gives [1 - p, p])
"""

import tensorflow as tf

from kseg.export.graph_molding import mold_images, resize_bilinear


def output_probabilities(output, activation):
    """Model output [B, h, w, C] -> probabilities [B, h, w, K] (`output_probabilities`)."""
    output = tf.cast(output, tf.float32)
    if activation == "logits":
        output = tf.sigmoid(output) if output.shape[-1] == 1 else tf.nn.softmax(output, -1)
    if output.shape[-1] == 1:
        output = tf.concat([1.0 - output, output], axis=-1)
    return output


def make_serving_fn(keras_model, config):
    """`serve(images [B, H, W, 3] uint8) -> {"class_map", "probabilities"}`: molded as in
    training, predicted, the window cut out and resized (bilinear) to H x W."""
    activation = config.OUTPUT_ACTIVATION

    def serve(images):
        molded, window, _ = mold_images(images, config)
        probs = output_probabilities(keras_model(molded, training=False), activation)
        probs = probs[:, window[0]:window[2], window[1]:window[3]]
        size = tf.shape(images)[1:3]
        probs = tf.cond(tf.reduce_all(tf.equal(tf.shape(probs)[1:3], size)),
                        lambda: probs, lambda: resize_bilinear(probs, size))
        probs = tf.ensure_shape(probs, [None, None, None, int(config.NUM_CLASSES)])
        return {"class_map": tf.argmax(probs, axis=-1, output_type=tf.int32),
                "probabilities": probs}

    return serve
