"""KFP component: register."""
