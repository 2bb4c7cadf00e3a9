"""Feature Pyramid Network (Lin et al.): C2..C5 -> P2..P6, Matterport's layer names.

Shape shorthand: P{k}: [batch, H / 2**k, W / 2**k, TOP_DOWN_PYRAMID_SIZE].
"""

from keras import layers

from kseg.models.conv import Conv2D


def fpn_graph(c2, c3, c4, c5, pyramid_size):
    """Returns [P2, P3, P4, P5, P6] (P6 = 1x1 max-pool, stride 2, of P5)."""
    p5 = layers.Conv2D(pyramid_size, 1, name="fpn_c5p5")(c5)
    p4 = layers.Add(name="fpn_p4add")([
        layers.UpSampling2D(2, name="fpn_p5upsampled")(p5),
        layers.Conv2D(pyramid_size, 1, name="fpn_c4p4")(c4)])
    p3 = layers.Add(name="fpn_p3add")([
        layers.UpSampling2D(2, name="fpn_p4upsampled")(p4),
        layers.Conv2D(pyramid_size, 1, name="fpn_c3p3")(c3)])
    p2 = layers.Add(name="fpn_p2add")([
        layers.UpSampling2D(2, name="fpn_p3upsampled")(p3),
        layers.Conv2D(pyramid_size, 1, name="fpn_c2p2")(c2)])
    p2 = Conv2D(pyramid_size, 3, padding="same", name="fpn_p2")(p2)
    p3 = Conv2D(pyramid_size, 3, padding="same", name="fpn_p3")(p3)
    p4 = Conv2D(pyramid_size, 3, padding="same", name="fpn_p4")(p4)
    p5 = Conv2D(pyramid_size, 3, padding="same", name="fpn_p5")(p5)
    p6 = layers.MaxPooling2D(pool_size=1, strides=2, name="fpn_p6")(p5)
    return [p2, p3, p4, p5, p6]
