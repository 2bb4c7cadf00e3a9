"""The optimizer a config asks for (Matterport: SGD + momentum + gradient norm clipping)."""

import keras


def make_optimizer(config, learning_rate, momentum=None):
    """SGD (Matterport's default), Adam or AdamW, with GRADIENT_CLIP_NORM applied."""
    clip = config.GRADIENT_CLIP_NORM
    kwargs = {"clipnorm": float(clip)} if clip else {}
    name = config.OPTIMIZER
    if name == "sgd":
        momentum = config.LEARNING_MOMENTUM if momentum is None else momentum
        return keras.optimizers.SGD(learning_rate, momentum=momentum, **kwargs)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, **kwargs)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate, weight_decay=config.WEIGHT_DECAY, **kwargs)
    raise ValueError(f"OPTIMIZER = {name!r}; expected sgd, adam or adamw")
