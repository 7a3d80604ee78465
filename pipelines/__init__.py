"""KFP pipelines: one per method, built from the method's declared stages."""
