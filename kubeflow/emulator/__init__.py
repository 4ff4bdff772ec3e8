"""The KFP emulator: runs a compiled Kubeflow spec here the way open-source KFP's driver and launcher
would (``./gan launch-kfp``), to check compiled specs without a cluster. A development tool: no
product module imports it (the layer contract in pyproject.toml).
"""
