"""Dataset folders <-> arrays."""

from __future__ import annotations

import numpy as np
import pytest

from loopgen.data.dataset import dataset_dir, load_loops, pack_loops, unpack_loops
from loopgen.data.extract import extract, extract_file
from loopgen.loops import LoopParams
from loopgen.store.paths import MissingInputError, Paths
from test_extract import make_corpus


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    corpus = make_corpus(tmp_path_factory.mktemp("corpus"))
    out = tmp_path_factory.mktemp("loops") / "demo"
    extract(corpus, out, workers=1, progress=False)
    return corpus, out


def test_pack_roundtrip():
    rng = np.random.default_rng(0)
    loops = (rng.random((5, 128, 93)) < 0.1).astype(np.uint8)
    packed = pack_loops(loops)
    assert packed.shape == (5, 1488) and packed.dtype == np.uint8
    assert np.array_equal(unpack_loops(packed), loops)
    with pytest.raises(ValueError, match=r"\(N, 1488\)"):  # e.g. bits packed along the columns instead
        unpack_loops(np.packbits(loops, axis=-1))
    with pytest.raises(ValueError, match="binary"):
        pack_loops(loops * 2)


def test_load_loops_matches_extraction(dataset):
    corpus, out = dataset
    loops = load_loops(out)
    assert len(loops) == 15 and loops.loops.shape == (15, 128, 93) and loops.loops.dtype == np.uint8
    assert list(loops.source) == sorted(loops.source, key=str)  # ordered by source path
    assert len(loops.data_key) == 16 and loops.data_key == loops.manifest["data_key"]
    assert loops.report["totals"]["loops"] == 15
    first = extract_file(corpus / loops.source[0])
    assert np.array_equal(loops.loops[: len(first.start_bars)], first.loops)
    assert list(loops.start_bar[: len(first.start_bars)]) == first.start_bars


def test_split_filter(dataset):
    _, out = dataset
    whole = load_loops(out)
    parts = {name: load_loops(out, split=name) for name in ("train", "val", "test")}
    assert sum(len(p) for p in parts.values()) == len(whole)
    for name, part in parts.items():
        assert (part.split == name).all() and part.data_key == whole.data_key
        assert np.array_equal(part.loops, whole.loops[whole.split == name])
    assert len(parts["train"]) >= len(whole) // 2
    assert set(parts["train"].source).isdisjoint(parts["test"].source)
    with pytest.raises(ValueError):
        load_loops(out, split="dev")
    sub = whole.select(whole.start_bar == 0)
    assert len(sub) == 5 and sub.data_key == whole.data_key


def test_missing_dataset_names_the_notebook(tmp_path):
    with pytest.raises(MissingInputError, match="01_extract_loops"):
        load_loops(tmp_path / "nothing")


def test_dataset_dir_is_named_after_corpus_and_params(tmp_path):
    paths = Paths(tmp_path)
    folder = dataset_dir(paths, "demo-300-s0")
    assert folder == paths.loops_dir(f"demo-300-s0-{LoopParams().key()}")
    assert dataset_dir(paths, "demo-300-s0", LoopParams(stride_bars=8)) != folder
