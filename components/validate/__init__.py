"""KFP component: validate."""
