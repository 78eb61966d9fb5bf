"""Training: LintSeq edit sequences, CYCLE self-refine data, LoRA fine-tuning with the Past
Generation Mask, and export to llama.cpp (GGUF LoRA adapters or merged quantized models).

Heavy dependencies (torch, transformers, peft, pylint, rank-bm25, gguf) come from the
`training` extra and are imported only inside the functions that use them.
"""
