"""Reporting (torch-free): plots, the HTML report, the plain-data gradient-health
verdicts, and the progress lines printed while training."""
