"""Use cases: no HTTP and no CLI; they see only the seams' Protocols."""
