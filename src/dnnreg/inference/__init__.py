"""Predicting from a model file: the torch-free NumPy runtime, ONNX export, and the
from-scratch NumPy reference (the tests' oracle: nothing in production imports it)."""
