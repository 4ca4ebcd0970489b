"""Readers for the data sets of the papers, a small labelled-images container, and augmentation.

Every reader takes the official archive (a .zip) or the folder it unpacks to.
Images come back as float32 arrays (N, 1, H, W) in [0, 1].
"""
from .augment import affine_augment
from .datasets import LabelledImages
from .readers import load_att_faces, load_digits, load_mnist, load_omniglot

__all__ = ["affine_augment", "LabelledImages", "load_att_faces", "load_digits", "load_mnist", "load_omniglot"]
