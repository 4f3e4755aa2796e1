"""Command-line tools installed as console scripts (``setup.py`` ``entry_points``)."""
