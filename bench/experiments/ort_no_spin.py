"""Benchmark experiment: make every onnxruntime session block instead of spin while waiting for work.

Loaded into the server as ``sitecustomize`` (``turn_latency.py --server-preload``) or run in process
(``turn_breakdown.py --preload``), so the product code stays untouched. It sets the session config entries
``session.intra_op.allow_spinning`` and ``session.inter_op.allow_spinning`` to ``0``.
"""

from __future__ import annotations

from typing import Any


def install() -> None:
    """Wrap ``onnxruntime.InferenceSession`` so that its options disable thread spinning."""
    try:
        import onnxruntime as ort
    except ImportError:
        return
    original = ort.InferenceSession

    class NoSpinSession(original):  # type: ignore[misc, valid-type]
        def __init__(self, path_or_bytes: Any, sess_options: Any = None, *args: Any, **kwargs: Any) -> None:
            options = sess_options if sess_options is not None else ort.SessionOptions()
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.add_session_config_entry("session.inter_op.allow_spinning", "0")
            super().__init__(path_or_bytes, options, *args, **kwargs)

    ort.InferenceSession = NoSpinSession


install()
