"""An episode's public data, what the tools may read: the funnel and its calendar, the segmented world, the
context tables, the daily panel and the public episode the environment hands the tools. Imports the spec (and the
SQL sandbox's column types), never how incidents were injected."""
