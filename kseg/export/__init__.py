"""Serving exports: TensorFlow SavedModel (molding inside the graph), ONNX, TFLite.

    from kseg.export import export_saved_model, export_onnx, export_tflite
    export_saved_model(MaskRCNN(mode="inference", config=config), "export/shapes")
    export_onnx(unet, "unet.onnx")

See `kseg.export.saved_model` for the signatures and outputs.

May import: kseg.config, kseg.ops, kseg.data, kseg.saving, kseg.models, kseg.utils
(never kseg.cli).
"""

from kseg.export.onnx import export_onnx, export_tflite
from kseg.export.saved_model import export_saved_model, resolve_model, write_atomically

__all__ = ["export_onnx", "export_saved_model", "export_tflite", "resolve_model",
           "write_atomically"]
