"""The int8 TFLite stress classifier, run with ai-edge-litert (tflite-runtime as fallback).

:meth:`StressModel.load` reads ``models/stress_features.json`` (:mod:`heartsong.stress.spec`)
and ``models/stress_int8.tflite``, and refuses a model that is missing, corrupt, not the
file its spec was written for (SHA-256), or whose input and output are not the int8
tensors the spec describes. :meth:`StressModel.predict` standardises a window's features
with the spec's mean and scale, quantizes them with the model's own input scale and zero
point (``q = round(x / scale) + zero_point``, saturated to int8), runs the interpreter
and dequantizes the output (``p = (q - zero_point) * scale``), a probability.

Quantization as in Jacob et al. (2018), "Quantization and training of neural networks for
efficient integer-arithmetic-only inference", CVPR 2018, 2704-2713.
"""

from __future__ import annotations

import hashlib
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from heartsong.errors import InputDataError
from heartsong.events import FloatArray
from heartsong.stress.features import FEATURE_NAMES, standardize
from heartsong.stress.runtime import TfliteRuntime, find_runtime
from heartsong.stress.spec import MODEL_FILE, SPEC_FILE, StressModelError, StressSpec, load_spec

__all__ = ["DEFAULT_MODEL_DIR", "StressModel"]

logger = logging.getLogger(__name__)

#: ``models/`` of the source tree (firmware/heartsong/stress/model.py -> repo root).
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[3] / "models"


def _quant(detail: dict[str, Any], where: str) -> tuple[float, int]:
    scale, zero = detail.get("quantization", (0.0, 0))
    if detail.get("dtype") is not np.int8 or not (math.isfinite(scale) and scale > 0.0):
        raise StressModelError(
            f"{where}: expected an int8 tensor with a quantization scale, got "
            f"{np.dtype(detail.get('dtype')).name} (scale {scale})"
        )
    return float(scale), int(zero)


class StressModel:
    """A loaded, checked int8 stress classifier.

    Use :meth:`load`; the constructor takes an interpreter that is already allocated.
    """

    def __init__(self, spec: StressSpec, interpreter: Any, model_path: Path) -> None:
        self.spec = spec
        self.model_path = model_path
        self._interp = interpreter
        inputs = interpreter.get_input_details()
        outputs = interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise StressModelError(f"{model_path}: expected one input and one output tensor")
        n = len(spec.features)
        if list(inputs[0]["shape"]) != [1, n]:
            raise StressModelError(
                f"{model_path}: input shape {list(inputs[0]['shape'])} does not match the "
                f"spec's {n} features [1, {n}] ({spec.path})"
            )
        if list(outputs[0]["shape"]) != [1, 1]:
            raise StressModelError(f"{model_path}: output shape {list(outputs[0]['shape'])}, "
                                   "expected [1, 1]")
        self._in_scale, self._in_zero = _quant(inputs[0], f"{model_path}: input")
        self._out_scale, self._out_zero = _quant(outputs[0], f"{model_path}: output")
        self._in_index = int(inputs[0]["index"])
        self._out_index = int(outputs[0]["index"])
        self._buf = np.zeros((1, n), dtype=np.int8)
        self._index = np.asarray(spec.feature_index, dtype=np.intp)
        self._mean = np.asarray(spec.mean, dtype=np.float64)
        self._scale = np.asarray(spec.scale, dtype=np.float64)

    @classmethod
    def load(
        cls,
        model_dir: Path = DEFAULT_MODEL_DIR,
        *,
        runtime: TfliteRuntime | None = None,
        num_threads: int = 1,
    ) -> StressModel:
        """Load ``stress_int8.tflite`` and its spec from ``model_dir`` and check them.

        Parameters
        ----------
        model_dir:
            Directory holding :data:`~heartsong.stress.spec.MODEL_FILE` and
            :data:`~heartsong.stress.spec.SPEC_FILE`.
        runtime:
            The TFLite runtime (default :func:`heartsong.stress.runtime.find_runtime`).
        num_threads:
            Interpreter threads (one: the model is tiny and the audio needs the cores).

        Raises
        ------
        StressModelError
            Missing, corrupt or mismatched model or spec (the message says which).
        heartsong.stress.runtime.RuntimeMissingError
            When no TFLite runtime is installed.
        """
        spec = load_spec(model_dir / SPEC_FILE)
        path = model_dir / MODEL_FILE
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise StressModelError(
                f"{path}: missing (train a model with tools/train_stress_model.py)"
            ) from exc
        except OSError as exc:
            raise StressModelError(f"{path}: unreadable ({exc.strerror})") from exc
        digest = hashlib.sha256(data).hexdigest()
        if digest != spec.model_sha256:
            raise StressModelError(
                f"{path}: SHA-256 {digest[:12]}... is not the {spec.model_sha256[:12]}... of the "
                f"model {spec.path} was written for: model and spec do not belong together"
            )
        rt = runtime or find_runtime()
        try:
            interp = rt.interpreter(model_content=data, num_threads=num_threads)
            interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise StressModelError(f"{path}: not a usable TFLite model ({exc})") from exc
        model = cls(spec, interp, path)
        logger.info("stress model %s loaded (%s, %d features)", spec.model_version, rt.module,
                    len(spec.features))
        return model

    @property
    def input_quantization(self) -> tuple[float, int]:
        """The model's input (scale, zero point)."""
        return self._in_scale, self._in_zero

    @property
    def output_quantization(self) -> tuple[float, int]:
        """The model's output (scale, zero point)."""
        return self._out_scale, self._out_zero

    def quantize(self, x_std: FloatArray) -> npt.NDArray[np.int8]:
        """Standardised inputs to int8 with the model's input scale and zero point."""
        q = np.rint(np.asarray(x_std, dtype=np.float64) / self._in_scale) + self._in_zero
        out: npt.NDArray[np.int8] = np.clip(q, -128, 127).astype(np.int8)
        return out

    def predict_standardized(self, x_std: FloatArray) -> float:
        """The probability of stress for standardised model inputs.

        Parameters
        ----------
        x_std:
            One value per model input (:attr:`StressSpec.features` order), standardised.

        Returns
        -------
        float
            ``p_stress`` in [0, 1].
        """
        x = np.asarray(x_std, dtype=np.float64)
        if x.shape != (self._buf.shape[1],):
            raise InputDataError("features", f"{self._buf.shape[1]} standardised values", x.shape)
        self._buf[0] = self.quantize(x)
        self._interp.set_tensor(self._in_index, self._buf)
        self._interp.invoke()
        q = int(self._interp.get_tensor(self._out_index)[0, 0])
        return min(max((q - self._out_zero) * self._out_scale, 0.0), 1.0)

    def model_inputs(self, features: FloatArray) -> FloatArray:
        """Select the model's inputs from all features and standardise them.

        Parameters
        ----------
        features:
            One value per :data:`~heartsong.stress.features.FEATURE_NAMES` entry.
        """
        f = np.asarray(features, dtype=np.float64)
        if f.shape != (len(FEATURE_NAMES),):
            raise InputDataError("features", f"{len(FEATURE_NAMES)} values", f.shape)
        return standardize(f[self._index], self._mean, self._scale, self.spec.clip)

    def predict(self, features: FloatArray) -> float:
        """The probability of stress of one window from all its features.

        Parameters
        ----------
        features:
            From :func:`heartsong.stress.features.window_features` (all features).
        """
        return self.predict_standardized(self.model_inputs(features))

    def __repr__(self) -> str:
        return f"StressModel({self.spec.model_version!r}, {len(self.spec.features)} features)"
