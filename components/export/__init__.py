"""KFP component: export."""
