"""inferq's benchmark suite: ``python -m bench [--quick]``; the method is in ``bench/README.md``."""
