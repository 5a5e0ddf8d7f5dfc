"""layerscan: a fast, trustworthy container-image analyzer."""

__version__ = "0.1.0"
