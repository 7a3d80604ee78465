"""Training loops shared by methods (SimCLR, SCAN, self-labelling, RUC's co-training).

Each loop takes a model, the pool as one device tensor, its pydantic config and a CPU generator,
and returns stage metrics; methods in :mod:`dcflow.methods` wire them to stages and artifacts.
"""
