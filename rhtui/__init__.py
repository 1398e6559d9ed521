"""rhtui: a research ensemble of local LLM students on one GPU, with a live dashboard."""

__version__ = "0.1.0"
