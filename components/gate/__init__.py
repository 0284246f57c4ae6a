"""KFP component: gate."""
