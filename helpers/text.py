"""Tokenizing and vocabularies: what the tutorials took from `torchtext.legacy.data.Field`.

This module needs only spaCy and the standard library (no torch), so the
deployed Lambda handler tokenizes with exactly the code used in training.
"""
from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .files import atomic_path

from re import _parser as regex_parser  # the parser behind re.compile (Python 3.11+, as the course requires)

UNK, PAD = "<unk>", "<pad>"
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
TOKENIZER_VERSION = 2  # bump when tokenizing changes, so prepared caches are rebuilt
# The bounds that keep tokenizing linear (see `Tokenizer`). The longest whitespace-free chunk in
# IMDb and TREC has 76 characters and the longest review 2,762 tokens, so neither bound changes
# a single token of the course's data (tests/token_digests.py proves it on every text).
MAX_CHUNK_CHARS = 80
LONG_CHUNK_PIECE_CHARS = 16  # what a longer chunk is cut into: short pieces keep spaCy's n^2 small
MAX_TOKENS = 3000
_PIECE = re.compile(r"\S+")


def suffix_window(pattern: re.Pattern) -> int | None:
    """How many characters at the end of a string decide spaCy's suffix search, or None when that
    cannot be proven for `pattern` (a compiled suffix regex, `spacy.util.compile_suffix_regex`).

    spaCy's suffix regex is `alt1$|alt2$|...`, searched from the string's start: every search costs
    the string's length, and a chunk is searched once per affix it peels (quadratic). A match ends
    at the end (or before a final newline), so an alternative at most `m` characters wide can only
    start in the last `m + 1` characters, and a run of one character class at least `k` long
    (`\\.\\.+`) that starts earlier also matches `k + 1` characters from the end. The window is the
    largest of these; None if an alternative is neither (or does not end with `$`).
    """
    try:
        tree = regex_parser.parse(pattern.pattern, pattern.flags)
    except Exception:  # noqa: BLE001 (an unparsable pattern: no window, spaCy's own search stays)
        return None
    items = list(tree)
    alternatives = items[0][1][1] if len(items) == 1 and items[0][0] is regex_parser.BRANCH else [tree]
    window = 2
    for alternative in alternatives:
        parts = list(alternative)
        if not parts or parts[-1] != (regex_parser.AT, regex_parser.AT_END):
            return None
        low, high = alternative.getwidth()
        if high < regex_parser.MAXREPEAT:
            window = max(window, high + 2)
            continue
        # unbounded: only a run of a single character matcher, e.g. [(LITERAL .), (MAX_REPEAT 1.. [LITERAL .])]
        body, element = parts[:-1], None
        for op, value in body:
            single = [(op, value)] if op in (regex_parser.LITERAL, regex_parser.IN) else (
                list(value[2]) if op is regex_parser.MAX_REPEAT and value[1] == regex_parser.MAXREPEAT else None)
            if single is None or len(single) != 1 or (element is not None and single[0] != element):
                return None
            element = single[0]
        window = max(window, low + 1)
    return window


def windowed_suffix_search(pattern: re.Pattern):
    """`pattern.search` (spaCy's suffix search) with the same answer for every string, at a cost bounded
    by `suffix_window(pattern)` instead of the string's length; None when no window can be proven.

    The search starts `window` characters from the end. A match starting later is the leftmost one:
    nothing can start before the window without a run alternative also matching at its first
    character. A match exactly there (a long run of dots) may start earlier: the positions where one
    matches are then contiguous up to the window, so a binary search finds the first (log n tries,
    not a rescan from every position, which costs a run's length squared at every earlier run)."""
    window = suffix_window(pattern)
    if window is None:
        return None

    search_from, match_at = pattern.search, pattern.match  # called for every affix: no attribute lookups

    def search(string: str):
        start = len(string) - window
        if start <= 0:
            return search_from(string)
        match = search_from(string, start)  # lookbehinds still see the characters before `start`
        if match is None or match.start() > start:
            return match
        low, high = 0, start  # a match starts at `high`; find the first position that has one
        while low < high:
            middle = (low + high) // 2
            if match_at(string, middle) is None:
                low = middle + 1
            else:
                high = middle
        return match_at(string, high)

    return search


def remove_html_breaks(text: str) -> str:
    """`text` with each HTML line break (`<br />`, `<br>`, `<BR/>`) replaced by a space.

    IMDb reviews contain them; a word tokenizer would read `<`, `br`, `/><br` and BERT's
    WordPiece `<`, `br`, `/`, `>`. Both the course's `Tokenizer` and lesson 6's encoder use this.
    """
    return _HTML_BREAK.sub(" ", text)


class Tokenizer:
    """spaCy's English tokenizer rules (`spacy.blank("en")`, no model download).

    Defaults follow the tutorials' `Field(tokenize="spacy")`: case is kept. IMDb's
    `<br />` line breaks become spaces instead of the tokens `<`, `br`, `/><br`.
    Calling it maps one string to a list of token strings.

    Two bounds make the time linear in the input's length whatever the input. spaCy splits
    affixes one at a time, so a whitespace-free chunk of n symbols ("!!!...", emoji) costs
    about n^2: a chunk longer than `max_chunk_chars` is first cut into pieces of
    `LONG_CHUNK_PIECE_CHARS` characters. And a text gives at most `max_tokens` tokens (the first ones); spaCy only
    sees as much of the text as that needs. Inputs within both bounds tokenize exactly as
    spaCy alone would. `None` switches a bound off.
    """

    def __init__(self, lowercase: bool = False, strip_html_breaks: bool = True, language: str = "en",
                 max_chunk_chars: int | None = MAX_CHUNK_CHARS, max_tokens: int | None = MAX_TOKENS):
        for name, value in (("max_chunk_chars", max_chunk_chars), ("max_tokens", max_tokens)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
        self.lowercase = lowercase
        self.strip_html_breaks = strip_html_breaks
        self.language = language
        self.max_chunk_chars = max_chunk_chars
        self.max_tokens = max_tokens
        self._nlp = None

    @property
    def config(self) -> dict:
        """The settings that change the output: saved with vocabularies and model bundles, and part of cache keys."""
        import spacy  # deferred: importing spaCy costs ~0.3 s, and most imports of this module never tokenize

        return {
            "kind": "spacy-blank",
            "language": self.language,
            "lowercase": self.lowercase,
            "strip_html_breaks": self.strip_html_breaks,
            "max_chunk_chars": self.max_chunk_chars,
            "long_chunk_piece_chars": LONG_CHUNK_PIECE_CHARS,
            "max_tokens": self.max_tokens,
            "spacy_version": spacy.__version__,
            "version": TOKENIZER_VERSION,
        }

    @classmethod
    def from_config(cls, config: dict) -> "Tokenizer":
        """The tokenizer `config` describes; settings written before the bounds existed
        (bundles exported before tokenizer version 2) get today's default bounds."""
        return cls(lowercase=config["lowercase"], strip_html_breaks=config["strip_html_breaks"],
                   language=config["language"], max_chunk_chars=config.get("max_chunk_chars", MAX_CHUNK_CHARS),
                   max_tokens=config.get("max_tokens", MAX_TOKENS))

    def _tokenizer(self):
        if self._nlp is None:
            import spacy  # deferred: importing spaCy costs ~0.3 s, and workers import it themselves

            nlp = spacy.blank(self.language)
            # Only the tokens' text is used. Without this, spaCy computes a dozen lexical attributes
            # (shape, prefix, like_num, ...) for every word it has not seen before: about half the
            # cost of tokenizing new words. Token boundaries do not depend on them.
            nlp.vocab.lex_attr_getters = {}
            # The same suffixes found in a bounded window at the end of each chunk: without it, a chunk
            # of one word and 76 punctuation marks costs 1 ms (spaCy rescans it for every mark it peels).
            search = windowed_suffix_search(nlp.tokenizer.suffix_search.__self__)
            if search is not None:
                nlp.tokenizer.suffix_search = search
            self._nlp, self._suffix_windowed = nlp, search is not None
        return self._nlp.tokenizer

    @property
    def bounded_suffix_search(self) -> bool:
        """Whether spaCy's suffix search runs in a bounded window (`windowed_suffix_search`). False when the
        window cannot be proven for this spaCy's rules: a chunk then costs its length for each affix."""
        self._tokenizer()
        return self._suffix_windowed

    @property
    def known_strings(self) -> int:
        """How many strings spaCy's string table holds. It grows with every new word and never
        shrinks: a long-lived server calls `forget_strings` when it gets large."""
        return 0 if self._nlp is None else len(self._nlp.vocab.strings)

    def forget_strings(self) -> None:
        """Start spaCy afresh (its string table is a cache: the tokens stay the same)."""
        self._nlp = None

    def clean(self, text: str) -> str:
        if self.strip_html_breaks:
            text = remove_html_breaks(text)
        return text.lower() if self.lowercase else text

    def cut_long_chunks(self, text: str) -> str:
        """`text` with every whitespace-free chunk longer than `max_chunk_chars` cut into pieces
        of `LONG_CHUNK_PIECE_CHARS` (separated by spaces). Linear: matches only start at chunk starts."""
        if self.max_chunk_chars is None:
            return text
        size = LONG_CHUNK_PIECE_CHARS
        long_chunk = re.compile(r"(?<!\S)\S{%d,}" % (self.max_chunk_chars + 1))
        return long_chunk.sub(lambda m: " ".join(m[0][i:i + size] for i in range(0, len(m[0]), size)), text)

    def _spans(self, text: str):
        """`text` in consecutive parts of whitespace-separated pieces, sized so that tokenizing can
        stop soon after `max_tokens` without reading the rest of a long input: 16 pieces first,
        then as many as the tokens still missing, at the rate of tokens per piece seen so far (at
        least 16). A piece of punctuation gives up to 80 tokens, so reading too far is paid in
        tokens: at most 16 pieces too many. The generator is sent the number of tokens made so far
        after each part."""
        start, pieces, group, seen_pieces = 0, 0, 16, 0
        for match in _PIECE.finditer(text):
            pieces += 1
            if pieces == group:
                made = yield text[start:match.end()]
                seen_pieces += pieces
                missing = self.max_tokens - made
                group = max(16, math.ceil(missing / max(made / seen_pieces, 1e-3)))
                start, pieces = match.end(), 0
        yield text[start:]

    def __call__(self, text: str) -> list[str]:
        tokenize = self._tokenizer()
        text = self.cut_long_chunks(self.clean(text))
        if self.max_tokens is None:
            return [token.text for token in tokenize(text) if not token.text.isspace()]
        tokens = []
        # Whitespace tokens (runs of spaces, newlines) are dropped with str.isspace, which is spaCy's
        # own is_space attribute. spaCy tokenizes each whitespace-separated piece on its own, so tokenizing the parts
        # one after the other gives the same tokens as the whole text at once
        spans = self._spans(text)
        span = next(spans)
        while True:
            tokens += [token.text for token in tokenize(span) if not token.text.isspace()]
            if len(tokens) >= self.max_tokens:
                break
            try:
                span = spans.send(len(tokens))
            except StopIteration:
                break
        return tokens[:self.max_tokens]

    def __getstate__(self):  # the spaCy pipeline is rebuilt lazily in each worker process
        return {**self.__dict__, "_nlp": None}


# ---- saved cells: generated by `python -m helpers.sync` from the notebooks' #@save cells; edit those ----

# ---- notebooks/01_simple_rnn.ipynb, cell save-text-vocab ----
class Vocab:
    """Token <-> index mapping with `<unk>` and `<pad>`, like torchtext legacy's Vocab.

    `itos` is the list of tokens, `stoi` the dict back; looking up a token that is
    not in the vocabulary gives `unk_index` (`default_index`). Order: specials first,
    then by falling frequency, ties alphabetical (torchtext's order).
    """

    def __init__(self, itos: Sequence[str], specials: Sequence[str] = (UNK, PAD), default_token: str | None = UNK):
        self.itos = list(itos)
        self.stoi = {token: index for index, token in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("vocabulary has duplicate tokens")
        self.specials = list(specials)
        self.default_index = self.stoi[default_token] if default_token is not None else None

    @classmethod
    def from_counts(cls, counts: Counter | dict, max_size: int | None = None, min_freq: int = 1,
                    specials: Sequence[str] = (UNK, PAD)) -> "Vocab":
        """Keep tokens seen at least `min_freq` times, the `max_size` most frequent (specials not counted)."""
        ranked = sorted((item for item in counts.items() if item[1] >= min_freq and item[0] not in specials),
                        key=lambda item: (-item[1], item[0]))
        if max_size is not None:
            ranked = ranked[:max_size]
        return cls([*specials, *(token for token, _ in ranked)], specials=specials,
                   default_token=UNK if UNK in specials else None)

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], max_size: int | None = None, min_freq: int = 1,
              specials: Sequence[str] = (UNK, PAD)) -> "Vocab":
        """Count tokens over an iterable of token lists and build the vocabulary."""
        counts = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        return cls.from_counts(counts, max_size=max_size, min_freq=min_freq, specials=specials)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        index = self.stoi.get(token, self.default_index)
        if index is None:
            raise KeyError(f"{token!r} is not in the vocabulary and it has no default index")
        return index

    @property
    def unk_index(self) -> int | None:
        return self.stoi.get(UNK)

    @property
    def pad_index(self) -> int | None:
        return self.stoi.get(PAD)

    def lookup_indices(self, tokens: Iterable[str]) -> list[int]:
        return [self[token] for token in tokens]

    def lookup_tokens(self, indices: Iterable[int]) -> list[str]:
        return [self.itos[index] for index in indices]

    def to_dict(self) -> dict:
        return {"itos": self.itos, "specials": self.specials,
                "default_token": None if self.default_index is None else self.itos[self.default_index]}

    @classmethod
    def from_dict(cls, data: dict) -> "Vocab":
        return cls(data["itos"], specials=data["specials"], default_token=data["default_token"])

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocabulary as JSON (never pickle), atomically."""
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocab":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, first={self.itos[:6]})"


# ---- notebooks/03_faster_sentiment.ipynb, cell save-text-add-bigrams ----
def add_bigrams(tokens: Sequence[str]) -> list[str]:
    """Append each distinct adjacent pair ("not good") to the tokens, as FastText does.

    `["not", "good", "at", "all"]` -> the 4 tokens + `["not good", "good at", "at all"]`.
    Pairs keep first-seen order so the output is deterministic.
    """
    pairs = dict.fromkeys(f"{a} {b}" for a, b in zip(tokens, tokens[1:]))
    return [*tokens, *pairs]

# ---- end of saved cells ----


def pad_sequences(sequences: Sequence[Sequence[int]], pad_index: int, min_length: int = 1):
    """Id lists -> (ids int64 array [batch, time] padded at the end with `pad_index`, lengths int64 [batch]).

    `time` is the longest sequence, but at least `min_length` (CNNs need their widest
    filter). NumPy only, so the torch-free Lambda handler shares it.
    """
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    ids = np.full((len(sequences), max(int(lengths.max(initial=0)), min_length)), pad_index, dtype=np.int64)
    for row, sequence in enumerate(sequences):
        ids[row, :len(sequence)] = sequence
    return ids, lengths


