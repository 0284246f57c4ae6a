"""KFP component: freshness."""
