"""The warehouse rung's generation: the segmented world's expected values drawn as sessions and their raw events
(events.py), behind the truth wall."""
