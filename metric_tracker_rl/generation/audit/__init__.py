"""The audit: the warehouse's world and event export, drawn from more mechanisms than any text names (the
warehouse's incident kinds and defects, and those registered in defects/), with a truth defined by the published
rules of a finding rather than by the mechanisms (truth.py). An episode of the train split never holds a held-out
mechanism (catalog.tiers.AuditMix)."""
