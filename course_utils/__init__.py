"""Helpers for the brain-tumor MRI classification course.

Importing the package does nothing but define names: no folders are created, no
random seed is set, no data is downloaded and no plotting defaults are changed.
"""

__version__ = "0.1.0"
