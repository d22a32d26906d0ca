"""Temperature scaling of classifier logits, and the calibration error it is judged by."""

from __future__ import annotations

import math

import numpy as np

# Search range of log(T): T from 0.01 to 100 covers every head we train (kNN log-votes need T >> 1,
# an unregularized linear head T < 1); the optimum is checked to lie inside, not on the edge.
_LOG_T_BOUNDS = (math.log(0.01), math.log(100.0))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` (float64 for stable sums)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    exp = np.exp(z)
    return exp / exp.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0, smoothing: float = 0.0) -> float:
    """Mean cross-entropy of ``softmax(logits / T)`` against the labels (``smoothing`` spread over the others)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    true = log_probs[np.arange(len(labels)), labels]
    if not smoothing:
        return float(-true.mean())
    others = (log_probs.sum(axis=1) - true) / max(1, logits.shape[1] - 1)
    return float(-((1 - smoothing) * true + smoothing * others).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimizing the NLL of held-out ``logits`` with their true ``labels``.

    Args:
        logits: (n, classes) scores of examples the head was not trained on (out-of-fold or validation).
        labels: (n,) true class indices.

    Returns:
        T > 0; ``softmax(logits / T)`` are the calibrated probabilities. 1.0 when there is nothing to fit.

    The targets keep ``1 / (n + 2)`` for "wrong" (Laplace's rule of succession): after n right answers out
    of n the next one is not certain, and without it perfectly separated validation data would drive T to
    zero and every probability to 1.
    """
    from scipy.optimize import minimize_scalar

    if len(labels) == 0:
        return 1.0
    smoothing = 1.0 / (len(labels) + 2)
    result = minimize_scalar(lambda log_t: nll(logits, labels, math.exp(log_t), smoothing), bounds=_LOG_T_BOUNDS,
                             method="bounded", options={"xatol": 1e-4})
    return float(math.exp(result.x))


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE: the gap between confidence and accuracy, averaged over equal-width confidence bins.

    Args:
        probabilities: (n, classes) predicted distributions.
        labels: (n,) true class indices.
    """
    if len(labels) == 0:
        return 0.0
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.sum() * abs(float(correct[mask].mean()) - float(confidence[mask].mean()))
    return total / len(labels)
