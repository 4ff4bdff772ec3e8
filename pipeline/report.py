"""``./gan report [RUN]``: one self-contained HTML page per pipeline run (being written)."""
