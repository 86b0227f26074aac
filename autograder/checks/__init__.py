"""The checks: one module per part (``test_<part>.py``), its hidden checks in ``hidden/``, and the helpers they share."""
