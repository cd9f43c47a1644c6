"""Turn a float stress network into the int8 TFLite model and write it with its spec.

Full-integer post-training quantization (TensorFlow Lite converter; Jacob et al. 2018):
weights and activations int8, calibrated on a representative set of the training rows'
standardised inputs; the input and output tensors are int8 too, so the device quantizes
with the model's own scale and zero point. The network is written as a ``tf.Module``
with constant weights (no Keras), which converts to FULLY_CONNECTED and LOGISTIC ops.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from heartsong.stress.spec import MODEL_FILE, SPEC_FILE
from stress_models import DenseNet

#: Most representative rows used for calibration (evenly spaced through the training rows).
MAX_REPRESENTATIVE = 1000


def _tf() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    return tf


def set_tf_threads(n: int) -> None:
    """Limit TensorFlow to ``n`` threads (the machine is shared)."""
    tf = _tf()
    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)


def representative_rows(representative: np.ndarray, clip: float) -> np.ndarray:
    """The calibration rows: training rows evenly spaced (at most ``MAX_REPRESENTATIVE``)
    plus one row at each clip limit."""
    step = max(1, len(representative) // MAX_REPRESENTATIVE)
    n_in = representative.shape[1]
    return np.vstack([
        representative[::step],
        np.full((1, n_in), -clip),
        np.full((1, n_in), clip),
    ])


def shift_output_bias(net: DenseNet, shift: float) -> DenseNet:
    """``net`` with ``shift`` added to the bias of its output unit (logit units)."""
    w, b = net.layers[-1]
    return DenseNet((*net.layers[:-1], (w, b + shift)))


def convert_int8(net: DenseNet, representative: np.ndarray, clip: float) -> bytes:
    """The int8 TFLite flatbuffer of ``net``.

    Parameters
    ----------
    net:
        The float network (ReLU hidden layers, sigmoid output).
    representative:
        Standardised training inputs, shape (n_rows, n_inputs), for calibration.
    clip:
        The device clips standardised inputs to +-clip; rows at both limits join the
        calibration so the int8 input range covers every value the device can send (a
        person far from the population baseline would otherwise saturate the input).
    """
    tf = _tf()
    n_in = representative.shape[1]
    consts = [(tf.constant(w.astype(np.float32)), tf.constant(b.astype(np.float32)))
              for w, b in net.layers]

    class Net(tf.Module):  # type: ignore[misc]
        @tf.function(input_signature=[tf.TensorSpec([1, n_in], tf.float32)])
        def __call__(self, x: Any) -> Any:
            h = x
            for k, (w, b) in enumerate(consts):
                h = tf.matmul(h, w) + b
                if k < len(consts) - 1:
                    h = tf.nn.relu(h)
            return tf.sigmoid(h)

    module = Net()
    rows = representative_rows(representative, clip).astype(np.float32)

    def rep() -> Any:
        for r in rows:
            yield [r[None, :]]

    conv = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.__call__.get_concrete_function()], module
    )
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return bytes(conv.convert())


def write_model_dir(out_dir: Path, model: bytes, spec: dict[str, Any]) -> dict[str, Any]:
    """Write ``stress_int8.tflite`` and ``stress_features.json`` (with the model's SHA-256).

    Returns
    -------
    dict
        The spec as written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = dict(spec)
    spec["model_sha256"] = hashlib.sha256(model).hexdigest()
    (out_dir / MODEL_FILE).write_bytes(model)
    (out_dir / SPEC_FILE).write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    return spec
