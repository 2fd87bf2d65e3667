"""Data sets. Each task gives clean sequences ``x0`` and which positions may be masked."""
