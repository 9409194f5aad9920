"""The one content digest every store keys and checks its files by: SHA-256 (hex), fed in a stated order.

A dataset, a checkpoint, a group of generated loops and a shipped weights file are each named or checked by a
digest of what they hold, never of where they came from. :class:`ContentDigest` is the one way to compute one; its
methods say what is fed (text, bytes, an array with or without its dtype and shape, a nested value in a canonical
order). :func:`json_digest` keys a settings dictionary (checkpoint keys, loop-rule keys).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where an array is fed: a box with only torch hashes tensors
    import numpy as np


class ContentDigest:
    """A SHA-256 fed piece by piece; each method returns the digest itself, so calls chain."""

    def __init__(self, data: bytes = b"") -> None:
        self._sha = hashlib.sha256(data)

    def bytes(self, data: bytes | bytearray | memoryview) -> ContentDigest:
        """Feed raw bytes."""
        self._sha.update(data)
        return self

    def text(self, text: str, *, errors: str = "strict") -> ContentDigest:
        """Feed ``text`` as UTF-8 (``errors="surrogateescape"`` for file names that are not UTF-8)."""
        return self.bytes(text.encode("utf-8", errors))

    def array(self, values: np.ndarray, *, with_layout: bool = False, label: str = "") -> ContentDigest:
        """Feed an array's bytes (C order); ``with_layout`` first feeds ``label:dtype:shape;``, so that arrays of the
        same bytes but another dtype or shape differ."""
        import numpy as np

        values = np.asarray(values)
        if with_layout:
            self.text(f"{label}:{values.dtype.str}:{values.shape};")
        return self.bytes(np.ascontiguousarray(values).tobytes())

    def value(self, value: object) -> ContentDigest:
        """Feed nested dicts, lists, tensors, numbers and strings in a canonical order (dict keys sorted, every
        tensor with its dtype and shape): the same contents give the same digest on any device."""
        torch = sys.modules.get("torch")  # a tensor exists only where torch was imported
        if torch is not None and isinstance(value, torch.Tensor):
            t = value.detach().to("cpu").contiguous()
            self.text(f"T{t.dtype}{tuple(t.shape)}:")
            self.bytes(tensor_bytes(t))
        elif isinstance(value, dict):
            self.bytes(b"{")
            for key, item in sorted(value.items(), key=lambda kv: (type(kv[0]).__name__, repr(kv[0]))):
                self.value(key)
                self.value(item)
            self.bytes(b"}")
        elif isinstance(value, (list, tuple)):
            self.bytes(b"[")
            for item in value:
                self.value(item)
            self.bytes(b"]")
        else:
            self.text(f"{type(value).__name__}:{value!r};")
        return self

    def hex(self, length: int | None = None) -> str:
        """The hex digest, cut to ``length`` characters when given."""
        return self._sha.hexdigest()[:length]


def tensor_bytes(tensor) -> bytes:
    """A tensor's bytes in C order, as ``tensor.numpy().tobytes()`` gives them, without needing numpy (a box with
    only torch runs the GPU check): copied from the contiguous CPU tensor's memory."""
    torch = sys.modules["torch"]
    flat = tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8)
    return ctypes.string_at(flat.data_ptr(), flat.numel()) if flat.numel() else b""


def json_digest(settings: object, length: int | None = None) -> str:
    """The digest of ``settings`` written as JSON with sorted keys (values JSON cannot hold written as ``str``)."""
    return ContentDigest().text(json.dumps(settings, sort_keys=True, default=str)).hex(length)


def bytes_digest(data: bytes) -> str:
    """The SHA-256 of a whole file's bytes (hex), as ``index.json`` of the shipped weights records it."""
    return ContentDigest(data).hex()
