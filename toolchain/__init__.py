"""Tools of the repository itself (not installed): the real toolchain, images and releases."""
