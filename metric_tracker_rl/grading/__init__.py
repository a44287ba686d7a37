"""Where a submission and the truth meet: the grader's pure scoring functions and the overlap credit's worked
examples. Imports the catalog and the world."""
