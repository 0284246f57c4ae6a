"""`landmarkflow serve`: the Predictor behind HTTP (FastAPI + uvicorn), and its KServe InferenceService."""
