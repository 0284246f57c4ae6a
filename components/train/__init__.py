"""KFP component: train."""
