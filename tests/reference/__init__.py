"""Plain NumPy/SciPy reference implementations of every simbench kernel.

Each submodule mirrors one kernel module and is written for clarity, not speed: the
obvious formula, evaluated with SciPy's special functions where it needs them.  The tests
compare kernels against these, and these against statsmodels / scikit-learn where those
libraries compute the same quantity.
"""
