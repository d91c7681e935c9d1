"""sentiment-tutorials helpers: the data pipeline that replaces torchtext, the models,
the training loop, export and plots, shared by the notebooks, the tests and the deployment.

Modules by layer (the README's code map says who may import whom; tests/test_architecture.py
checks it):

* course layer (reads the environment and the checkout; nothing below imports it):
  course (profiles, where a run writes, start_lesson, LessonRun.export and .record,
  provenance), results (metrics.json: RunRecord, git_commit), run (the papermill batch runner).
* library, torch-free (what the Lambda package holds): files (paths, safe writes,
  downloads), text (tokenizer, vocabulary), bundle (reading and checking a deployment
  bundle), encoding (TextEncoding: how a text becomes model input, from training to serving);
  sync (writes lessons.py from the notebooks).
* library, no torch: progress (progress bars), corpus (tokenized arrays, parallel
  tokenizing), data (IMDb, TREC, your own tables), plots, diagrams (the lessons' teaching
  pictures), content (what each notebook holds: equations, diagrams, exercises, traces of
  the repository's history), baselines (scikit-learn, appendix B).
* library, torch: hardware (device, CPU/GPU description, package versions), precision
  (bf16/fp16/fp32 training), reproducibility (seeds, deterministic algorithms), lessons
  (generated, below), models, batching (length buckets, padding), inference (predict,
  mistakes), occlusion (lessons 3-4: P(positive) with each token dropped, and its figure),
  training (epochs, fit), vectors (GloVe), export (ONNX bundles), encoders
  (transformer encoders), features (lesson 6: cached encoder features), fine_tuning
  (appendix C).

The lesson code has one copy, in the notebooks: each lesson defines its models (and lesson 1
its training epoch) in cells whose first line is `#@save`, and the other code a student should
study (the vocabulary, bigrams, padding and length buckets, predict, GloVe rows, lesson 6's
encoder pass, the ONNX export, NB-SVM, appendix C's classifier and schedule) in cells marked
`#@save <module>`. `python -m helpers.sync` copies the first kind into `lessons.py` (generated:
never edit it; `models` and `training` import from there) and the second into the saved-cells
block of the module named (`#@save text` -> text.py, torch-free); tests/test_notebook_sync.py
fails while any copy differs from the notebooks.
"""
__version__ = "0.2.0"
