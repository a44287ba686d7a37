"""What the experts of the segmented tiers share: the SQL they read the segments with (`queries`, and the cuboid
search's `cuboid_queries`), the ripple check that localises a change to its cuboid (`localisation`), the
signatures that classify it (`classification`), the context tables that explain a move as benign (`context`), and
the reported rows with their numbers read back from the data (`reports`).

frontier_expert.py and deep_expert.py are procedures over this core: which queries they run, in which order, and
which classifiers decide. The aggregate tiers' expert (expert.py) reads the analysis tools instead."""
