"""The application layer: named tower presets, the training loop, the command line and the gradient-check catalogue."""
