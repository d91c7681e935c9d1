"""sentiment-tutorials helpers: the data pipeline that replaces torchtext, the models,
the training loop, plots and results, shared by the notebooks, the tests and the deployment.

Modules: files (paths, safe writes, downloads), text (tokenizer, vocabulary), corpus
(tokenized arrays, parallel tokenizing), data (IMDb, TREC, your own tables), vectors
(GloVe), batching (length buckets, padding), models, training, plots, results,
course (the course layer: profiles, where a run writes, start_lesson),
run (papermill batch runner).

The lesson code has one copy, in the notebooks: each lesson defines its models (and lesson 1
its training epoch) in cells whose first line is `#@save`. `python -m helpers.sync` copies
those cells into `lessons.py` (generated: never edit it; tests/test_notebook_sync.py fails
while it differs from the notebooks); `models` and `training` import from there.
"""
__version__ = "0.2.0"
