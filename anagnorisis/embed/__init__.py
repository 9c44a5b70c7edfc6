"""Embedding engine: media files to L2-normalised float32 vectors, keyed by (content hash, model id).

base (the Encoder protocol), device (where models run), basic (weight-free fallbacks), siglip (images),
clap (music), sentence (text), video (frames through an image encoder), registry (which encoder serves a kind),
pipeline (`embed`: vectors a kind is missing). Nothing is imported here, so importing one module stays cheap.
"""
