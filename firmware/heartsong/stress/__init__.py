"""Stress estimation: features, personal baseline and the int8 TFLite classifier."""
