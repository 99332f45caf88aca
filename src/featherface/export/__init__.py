"""Export to deployment formats (ONNX)."""

from featherface.export.onnx import ExportError, export_onnx

__all__ = ["ExportError", "export_onnx"]
