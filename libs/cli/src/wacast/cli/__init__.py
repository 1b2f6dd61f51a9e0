"""The wacast command line and the embedded dev stack."""
