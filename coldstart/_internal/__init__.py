"""Plumbing every stage may use: atomic file writes (:mod:`.io`), the quiet TensorFlow import
(:mod:`.tf`), the version check (:mod:`.versions`), what identifies a run (:mod:`.runinfo`), progress
display (:mod:`.progress`) and BLAS threads (:mod:`.blas`). Nothing here knows the course's data or
models, and notebooks use it through the stages that re-export it."""
