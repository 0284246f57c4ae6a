"""KFP component: ingest."""
