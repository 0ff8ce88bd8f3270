"""jaxvq's version, written once: the package, its records in workdirs and pyproject.toml read it."""
__version__ = "0.3.0"
