"""Generated from botocore's models by ``scripts/gen_shapes.py``; never edit by hand."""
