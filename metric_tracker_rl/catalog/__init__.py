"""What is published, and no truth: the anomaly families, the tiers (each names its own kinds), the published
constants and texts, the seeding, the named tasks and their splits, the plain wire types and the validation of a
report. Imports nothing of the package but itself."""
