"""How model instances are started or reached: every one speaks the SageMaker container contract."""
