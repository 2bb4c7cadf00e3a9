"""Small helpers shared across kseg: atomic file writes (`io`), run folders and their
checkpoints and config.json (`runs`), the backend runtime (`runtime`).

The lowest layer. May import: the standard library, NumPy and Keras; nothing else of kseg.
"""
