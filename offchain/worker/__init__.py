"""The GPU worker agent: serves allowlisted ONNX models to its router, signs a receipt per request."""

from __future__ import annotations

from offchain.worker._agent import ServedModel, Worker, WorkerConfig

__all__ = ["ServedModel", "Worker", "WorkerConfig"]
