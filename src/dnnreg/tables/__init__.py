"""The table wing (torch-free): reading files, the bundled datasets, row splits and
preprocessing (imputation, scaling, encoding, the target's scaling, the numeric
embeddings' bin edges), all fitted from NumPy and pandas."""
