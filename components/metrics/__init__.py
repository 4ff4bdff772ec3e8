"""GAN evaluation metrics: plain numpy/TF code, no TFX.

fid (Fréchet distance, FeatureStats), kid, precision_recall, density_coverage, classifier_score,
discriminator_accuracy; feature extractors domain_classifier and inception; feature_cache and
reference_stats (Beam) for computing the real-data side once. The registries the evaluation reads
by name: extractors.py (EXTRACTORS) and sample_metrics.py (METRICS). Modules import TensorFlow,
Keras and Beam only where they need them.
"""
