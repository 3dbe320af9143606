"""Numba kernels over float64 arrays.

Layout:

* ``codes``: the integer codes kernels dispatch on;
* ``links``, ``activations``, ``families``, ``losses``: scalar kernels and one-pass array
  kernels of the vocabulary;
* ``vecmath``: branch-free ``exp`` and ``log`` that vectorise; ``simd``: inner loops written
  as explicit vector code; ``linalg``: small Cholesky factorisations and solves;
* ``irls``: the reference GLM's passes; ``metrics``: the per-cell metric reductions and small
  GLM refits;
* ``network``: forward and backward passes on a flat parameter vector; ``minibatch``:
  optimiser steps and mini-batch epochs; ``training``: whole training runs (the first-order
  methods' epochs and Newton's method) with their stopping rules.

Importing a kernel module compiles nothing; each kernel compiles on its first call (and is
cached on disk).
"""
