"""The package version, in one place: the package root re-exports it, and modules below the
root read it from here rather than importing upwards."""

__version__ = "0.1.0"
