"""Models: the GGUF registry and installer, and the backends that generate text.

Import the heavy parts (llama.cpp) only through `cyclefix.models.load.open_backend`.
"""
