"""Image sources: where an image's manifest, config and layer blobs come from."""
