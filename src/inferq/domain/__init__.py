"""Pure data and rules of the product: no I/O."""
