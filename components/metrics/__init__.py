"""GAN evaluation metrics: plain numpy/TF code, no TFX.

fid (Fréchet distance, FeatureStats), kid, precision_recall, density_coverage, novelty,
classifier_score, discriminator_accuracy; feature extractors domain_classifier, random_cnn and
inception; reference_stats (Beam) for the real side's statistics, which the reference artifact
(components/evaluation/reference.py) stores once per data span: it is the feature-statistics cache. The registries the evaluation reads
by name: extractors.py (EXTRACTORS) and sample_metrics.py (METRICS). Modules import TensorFlow,
Keras and Beam only where they need them.
"""
