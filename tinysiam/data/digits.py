"""scikit-learn's bundled 8x8 handwritten digits: a data set that needs no download."""
import numpy as np

from .datasets import LabelledImages


def load_digits():
    """The 1797 digits as (1797, 1, 8, 8) float32 in [0, 1] (grey levels 0..16 divided by 16), 10 classes."""
    try:
        from sklearn.datasets import load_digits as sklearn_load_digits
    except ImportError:
        raise ImportError("the digits data set needs scikit-learn: pip install tinysiam[data]") from None
    digits = sklearn_load_digits()
    images = (digits.images / 16).astype(np.float32)[:, None]
    return LabelledImages(images, digits.target.astype(np.int64), [str(digit) for digit in range(10)])
