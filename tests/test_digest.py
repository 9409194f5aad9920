"""The one content digest (loopgen.store.digest) gives the hashes every store has always written."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch

from loopgen.loops import LoopParams
from loopgen.store.digest import ContentDigest, bytes_digest, json_digest
from loopgen.train.checkpoint import contents_digest, weights_digest


def test_json_digest_is_sha256_of_sorted_json():
    settings = {"b": 1, "a": [1, 2.5], "c": {"z": None, "y": "x"}}
    text = json.dumps(settings, sort_keys=True, default=str)
    assert json_digest(settings, 12) == hashlib.sha256(text.encode()).hexdigest()[:12]
    assert json_digest(settings) == hashlib.sha256(text.encode()).hexdigest()


def test_loop_rule_key_is_unchanged():
    params = LoopParams()
    text = json.dumps(params.as_dict(), sort_keys=True)
    assert params.key() == hashlib.sha256(text.encode()).hexdigest()[:8]


def test_array_digest_with_and_without_layout():
    values = np.arange(12, dtype=np.int16).reshape(3, 4)[:, ::2]  # not contiguous
    plain = hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()
    assert ContentDigest().array(values).hex() == plain
    laid = hashlib.sha256(b"k:<i2:(3, 2);" + np.ascontiguousarray(values).tobytes()).hexdigest()
    assert ContentDigest().array(values, with_layout=True, label="k").hex() == laid
    assert ContentDigest().array(values.astype(np.int32), with_layout=True, label="k").hex() != laid


def test_bytes_and_text():
    assert bytes_digest(b"abc") == hashlib.sha256(b"abc").hexdigest()
    name = b"caf\xe9.mid".decode("utf-8", "surrogateescape")
    assert ContentDigest().text(name, errors="surrogateescape").hex() == hashlib.sha256(b"caf\xe9.mid").hexdigest()


def test_nested_value_is_canonical_and_device_free():
    a = {"w": torch.ones(2, 3), "history": [1, 2.0, "x"], 3: None}
    b = {3: None, "history": [1, 2.0, "x"], "w": torch.ones(2, 3)}
    assert ContentDigest().value(a).hex() == ContentDigest().value(b).hex()
    assert ContentDigest().value({"w": torch.ones(2, 3)}).hex() != ContentDigest().value({"w": torch.ones(3, 2)}).hex()
    assert contents_digest({"model": a, "digest": "ignored"}) == contents_digest({"model": b})


def test_weights_digest_reads_names_and_float32_bytes():
    model = torch.nn.Linear(3, 2)
    sha = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        sha.update(name.encode())
        sha.update(tensor.detach().float().numpy().tobytes())
    assert weights_digest(model) == sha.hexdigest()[:12]
