import hashlib
import json
from pathlib import Path

import pytest

import dnnreg.tables.datasets as ds


@pytest.mark.parametrize("name", sorted(ds.DATASETS))
def test_bundled_file_matches_recorded_checksum_and_shape(name):
    info = ds.DATASETS[name]
    assert ds.verify_checksum(name)
    frame = ds.load_dataset(name)
    assert frame.shape == (info.rows, info.features + 1)
    assert frame.columns[-1] == info.target
    X, y = ds.load_dataset(name, return_X_y=True)
    assert X.shape == (info.rows, info.features) and y.name == info.target


@pytest.mark.parametrize("name", sorted(ds.DATASETS))
def test_checksums_agree_with_shared_manifest(name, shared_datasets):
    manifest = {d["name"]: d for d in json.loads((shared_datasets / "MANIFEST.json").read_text())}
    info = ds.DATASETS[name]
    assert manifest[name]["sha256"] == info.sha256
    raw = (shared_datasets / manifest[name]["file"]).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == info.sha256


def test_license_file_lists_every_dataset_and_loaders_document_source():
    text = (Path(ds.__file__).parent / "data" / "LICENSE-DATA.md").read_text()
    for info in ds.DATASETS.values():
        assert info.file in text
    for fn in (
        ds.load_california_housing,
        ds.load_concrete,
        ds.load_diabetes,
        ds.load_airfoil_self_noise,
        ds.load_yacht_hydrodynamics,
        ds.load_digits,
    ):
        assert "Source" in fn.__doc__


def test_unknown_dataset_suggests_the_closest_name():
    with pytest.raises(ValueError, match="did you mean 'concrete'"):
        ds.load_dataset("concret")
