"""The lean native scorer: loads a compiled model with ctypes; imports no numpy, pandas or scikit-learn."""
