"""What every layer shares: the features, settings, model artifacts, the decision rule, the reference sample."""
