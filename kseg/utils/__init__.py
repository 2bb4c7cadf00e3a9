"""Small helpers shared across kseg (file I/O, masks)."""
