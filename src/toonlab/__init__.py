"""toonlab: cartoon video datasets and multi-reference TTS."""

__version__ = "0.1.0"
