"""featherface: ultra-lightweight face detection (RetinaFace family, FeatherFace V1, Nano-B)."""

__version__ = "0.1.0"
