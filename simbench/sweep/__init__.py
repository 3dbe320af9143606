"""Sweeps: sweep files, cells and seeds, the runner, executors and the results store."""
