"""Getting images in: type sniffing, header reading, storing originals."""
