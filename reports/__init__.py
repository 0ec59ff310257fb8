"""Reports on what the farmer did: volume, fees, funding, PnL and points, per pair and in total."""
