"""Each model's `model:` config section, one module per model, free of torch so that configs parse without it."""
