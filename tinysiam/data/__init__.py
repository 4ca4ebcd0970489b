"""The data sets of the papers, small labelled containers, augmentation, and downloads.

Every reader takes the official archive (a .zip) or the folder it unpacks to.
The image readers return ``LabelledImages`` with float32 images (N, 1, H, W)
in [0, 1]; Omniglot's pen trajectories (``strokes.py``) come as
``LabelledSequences`` (N, F, L). Both are ``LabelledItems``, with the same
class-disjoint and item-disjoint splits. ``load_demo_background`` and
``load_demo_runs`` read the copy of Omniglot's minimal background set and
Lake's runs that ships inside the package. ``sick.py`` reads SICK's sentence
pairs and turns sentences into padded word ids (``tokenize``, ``Vocabulary``).
"""
from .augment import affine_augment
from .bundle import load_demo_background, load_demo_runs
from .datasets import LabelledImages, LabelledItems, LabelledSequences
from .digits import load_digits
from .download import fetch
from .faces import load_att_faces
from .mnist import load_mnist
from .omniglot import load_omniglot
from .sick import SickPairs, Vocabulary, load_sick, tokenize
from .strokes import augment_trajectories, load_omniglot_strokes

__all__ = ["LabelledImages", "LabelledItems", "LabelledSequences", "SickPairs", "Vocabulary", "affine_augment",
           "augment_trajectories", "fetch", "load_att_faces", "load_demo_background", "load_demo_runs", "load_digits",
           "load_mnist", "load_omniglot", "load_omniglot_strokes", "load_sick", "tokenize"]
