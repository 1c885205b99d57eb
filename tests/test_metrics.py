import numpy as np
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from dnnreg.metrics import regression_metrics


def test_metrics_equal_sklearn():
    rng = np.random.default_rng(1)
    y, p = rng.normal(size=50), rng.normal(size=50)
    m = regression_metrics(y, p)
    assert np.isclose(m["rmse"], np.sqrt(mean_squared_error(y, p)))
    assert np.isclose(m["mae"], mean_absolute_error(y, p))
    assert np.isclose(m["r2"], r2_score(y, p))
    assert m["n"] == 50
