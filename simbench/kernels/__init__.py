"""Numba kernels over float64 arrays.

Layout: ``codes`` (the integer codes kernels dispatch on), ``links``, ``activations``,
``families``, ``losses`` (scalar kernels and one-pass array kernels), ``irls`` (the reference
GLM's accumulation), ``network`` (forward/backward on a flat parameter vector).  Importing a
kernel module compiles nothing; each kernel compiles on its first call (and is cached on disk).
"""
