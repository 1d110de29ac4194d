"""Runnable examples: `python -m ktorch.examples.digits` trains a convnet on 8x8 digits."""
