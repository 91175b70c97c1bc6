"""Pretrained weights: registry, cache, downloads. Other layers call `adacode_cli.weights.api`."""
