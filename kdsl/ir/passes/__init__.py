"""Target-independent passes over kdsl IR."""
