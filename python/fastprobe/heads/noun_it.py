"""A ready-made attention-head probing task: the noun a later "it" refers to.

97 concrete nouns (each one token after a space for SmolLM2's tokenizer, none starting with a vowel so "a" fits) in
4 sentence templates with "it" after the noun: 388 sentences. The head finder looks for heads whose query at "it"
reads the noun; a probe on such a head's output at "it" recovers the noun (97 classes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["NOUNS", "TEMPLATES", "NounSentence", "noun_it_sentences"]

NOUNS: tuple[str, ...] = tuple(
    """
    ball bag bed bell bike bird boat book bottle bowl box bread brick broom bucket cake camera candle cap car card
    carpet cat chair clock coat computer cookie cup desk dog doll door drum fan flag flower fork frog glass glove goat
    guitar hammer hat horse house jar key kite knife ladder lamp leaf lemon letter lion map mirror mouse nail needle
    nest pan pen pencil phone piano pig pillow pipe plate pot radio ring rock rope rug shirt shoe sink sock spoon stone
    table tent tiger toy train tree truck vase wallet watch window shelf wheel
    """.split()
)
"""The 97 nouns."""

TEMPLATES: tuple[str, ...] = (
    "I saw a {noun}, and it was big.",
    "There is a {noun} in the room and it looks old.",
    "She bought a {noun} because it was cheap.",
    "We found a {noun} yesterday, and it was under the table.",
)
"""The 4 sentence templates; each has "it" after the noun."""


@dataclass(frozen=True)
class NounSentence:
    """One sentence: its text, its noun, the noun's index in the noun list, and its template's index."""

    text: str
    noun: str
    label: int
    template: int


def noun_it_sentences(nouns: Sequence[str] = NOUNS, templates: Sequence[str] = TEMPLATES) -> list[NounSentence]:
    """Return every noun in every template (noun-major order: the first noun in each template, then the next).

    Examples
    --------
    >>> s = noun_it_sentences()
    >>> len(s), s[0].text, s[0].label
    (388, 'I saw a ball, and it was big.', 0)
    """
    out: list[NounSentence] = []
    for label, noun in enumerate(nouns):
        for t, template in enumerate(templates):
            out.append(NounSentence(template.format(noun=noun), noun, label, t))
    return out
