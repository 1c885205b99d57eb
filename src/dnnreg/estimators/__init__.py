"""The estimators (scikit-learn API): the shared base, ``DNNRegressor``, ``DNNClassifier``,
and saving/loading them as model files."""
