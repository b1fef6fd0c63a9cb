"""The package's version: in every manifest, and in the hashes that key resumable outputs."""
__version__ = "0.1.0"
