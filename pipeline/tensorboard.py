"""``./gan tensorboard``: TensorBoard on a pipeline's training logs (being written)."""
