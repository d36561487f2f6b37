"""Training pipeline: synthetic applicant generator, LightGBM training, threshold search, ONNX export."""
