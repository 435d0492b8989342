"""Estimation: specs (spec.py), the estimator registry (registry.py) and the estimators, all following
``fit(df, spec) -> tidy DataFrame``."""
