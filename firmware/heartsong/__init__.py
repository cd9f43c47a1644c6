"""heartsong: firmware for a bedside device that listens to the heart and answers with sound.

The package imports on any machine: hardware libraries (smbus2, bleak, gpiozero, PyAudio,
the TFLite runtime) are imported lazily inside the backend that needs them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
