"""GAN evaluation metrics: plain numpy/TF code, no TFX.

fid (Fréchet distance, FeatureStats), kid, precision_recall, density_coverage, classifier_score,
discriminator_accuracy; feature extractors domain_classifier and inception; feature_cache and
reference_stats (Beam) for computing the real-data side once. Modules import TensorFlow, Keras
and Beam only where they need them.
"""
