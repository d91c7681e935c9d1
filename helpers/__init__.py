"""sentiment-tutorials helpers: the data pipeline that replaces torchtext, the models,
the training loop, plots and results, shared by the notebooks, the tests and the deployment.

Modules: files (paths, safe writes, downloads), text (tokenizer, vocabulary), corpus
(tokenized arrays, parallel tokenizing), data (IMDb, TREC, your own tables), vectors
(GloVe), batching (length buckets, padding), models, training, plots, results,
course (the course layer: profiles, where a run writes, start_lesson),
run (papermill batch runner).
"""
__version__ = "0.1.0"
