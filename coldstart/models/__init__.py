"""The models stage: baselines, the BERT models notebook 03 teaches, encoders, adapters and LoRA."""
