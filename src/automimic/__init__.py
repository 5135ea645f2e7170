"""automimic: robot policies that learn from a few demonstrations, then improve by practising in simulation."""

__version__ = "0.1.0"
