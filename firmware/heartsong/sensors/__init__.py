"""Sensors: the MAX30102 PPG driver, BLE heart-rate straps, and a simulated person to feed both.

Hardware libraries (smbus2, bleak) are imported lazily inside the backend that needs them,
so this package imports on any machine.
"""
