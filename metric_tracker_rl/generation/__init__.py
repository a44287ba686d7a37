"""Behind the truth wall: how an episode and its ground truth are made. The aggregate generator (scenario) with the
anomaly families' injectors (anomalies/), the segmented generator (frontier) with the incident and benign kinds
(kinds/), and the plans they share. Imports the spec and the world; the tools and the view never import it."""
