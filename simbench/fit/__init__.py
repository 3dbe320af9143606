"""Fitting: the reference GLM (IRLS) and neural network training."""
