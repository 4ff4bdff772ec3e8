"""The GanEvaluator's library: sampling, scoring and the blessing decision (evaluate.py), and the
real data's reference statistics it scores against (reference.py)."""
