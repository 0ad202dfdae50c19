r"""Prompt templates: the text a model sees for a prompt, and where the prompt's own text lies inside it.

A :class:`PromptTemplate` holds an optional system message and a user message with one ``{prompt}`` placeholder.
:func:`render` turns a template and a prompt into a :class:`TemplatedInput`: the full input text and the character
span of the prompt inside it; :meth:`TemplatedInput.token_spans` maps that span onto the tokens of the encoded text
(the prompt span) and every other token (the instruction span), the two spans aligned probing pools over.

How the text is built
---------------------
- With a chat template (the tokenizer's own, or that of ``chat_template_from``, e.g. a base model fed through an
  instruct model's template), the messages ``[system (if any), user]`` are rendered with
  ``add_generation_prompt=True``. A template without a system role (one that raises for a system message, or never
  renders its text) gets the system text folded into the user turn as ``system + "\n\n" + user``
  (:data:`FOLD_SEPARATOR`). The special-token variables of the template (``bos_token``, ...) are always those of the
  model's own tokenizer, the one that encodes the text.
- Without a chat template, the system text and the user message are joined with one space
  (:data:`PLAIN_SEPARATOR`), as workflow B joins its messages; a missing or empty system text is skipped.

Where the prompt is
-------------------
The template is rendered once with a sentinel in place of the prompt; the sentinel must appear exactly once, and
each real rendering must equal that rendering with the sentinel replaced by the prompt. A chat template that trims,
escapes or otherwise changes the prompt's text is therefore detected (an :class:`InvalidInputError` saying that the
prompt's text is not found as-is), instead of yielding a wrong span.

Special tokens
--------------
:attr:`TemplatedInput.add_special_tokens` is the ``add_special_tokens`` argument to encode the text with. For a plain
join it is True (the tokenizer's usual encoding: a BOS where the model has one). For a chat rendering the template
writes its own special tokens, so it is False whenever the text already starts with what the tokenizer would add
(e.g. SmolLM2's text starts with its ``bos_token`` ``<|im_start|>``: encoding it with special tokens would give a
second one), whenever the tokenizer adds nothing, and whenever the tokenizer would also append tokens at the end (an
EOS after the generation prompt would end the turn); it is True only when the tokenizer adds leading tokens only and
the template did not write them, so the encoded input starts with the tokenizer's BOS exactly once.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastprobe.exceptions import ArgumentTypeError, InvalidInputError

__all__ = [
    "FOLD_SEPARATOR",
    "PLAIN_SEPARATOR",
    "WORKFLOW_TEMPLATES",
    "PromptTemplate",
    "TemplatedInput",
    "render",
    "render_all",
]

#: Between the system text and the user message when a chat template has no system role.
FOLD_SEPARATOR = "\n\n"
#: Between the system text and the user message when the tokenizer has no chat template.
PLAIN_SEPARATOR = " "

# Stand-ins for the prompt and the system text while probing a template: private-use characters around lower-case
# words, so that neither a template's own text nor an upper-casing or escaping filter can produce them by accident.
_PROMPT_SENTINEL = "\ue000fastprobe prompt\ue001"
_SYSTEM_SENTINEL = "\ue002fastprobe system\ue003"
_NOT_AS_IS = "the prompt's text is not found as-is in the templated input"


@dataclass(frozen=True, init=False)
class PromptTemplate:
    """A prompt template: an optional system message and a user message holding the prompt.

    Parameters
    ----------
    user : str
        The user message, with exactly one ``{prompt}`` placeholder and no other (Python format syntax: write ``{{``
        and ``}}`` for literal braces). ``"{prompt}"`` alone sends the prompt as it is.
    system : str, optional
        The system message, used as literal text (no placeholder). None sends no system message; ``""`` sends an
        empty one where the chat template has a system role and is skipped otherwise.
    name : str, optional
        The template's name, which keys its results in the store. Defaults to ``"template-"`` and the first 12 hex
        digits of the SHA-256 of the template's content, so the same template has the same name in every process.

    Attributes
    ----------
    user : str
    system : str or None
    name : str
        The given name, or the content-derived default.

    Raises
    ------
    InvalidInputError
        If there is no user message, the user message has no, several or other placeholders (or unbalanced braces),
        the system message holds a ``{prompt}`` placeholder, or the name is empty.
    ArgumentTypeError
        If the user message, the system message or the name is not a string.

    Examples
    --------
    >>> t = PromptTemplate("Continue: {prompt}", system="Be brief.", name="brief")
    >>> t.fill("Once upon a time")
    'Continue: Once upon a time'
    """

    user: str
    system: str | None
    name: str

    def __init__(self, user: str, system: str | None = None, name: str | None = None) -> None:
        if name is not None:
            if not isinstance(name, str):
                raise ArgumentTypeError(f"a prompt template's name must be a string; got {type(name).__name__}")
            if not name:
                raise InvalidInputError("a prompt template's name must be a non-empty string; got ''")
        label = f"prompt template {name!r}" if name is not None else "prompt template"
        if user is None:
            raise InvalidInputError(f"{label} has no user message (user=None); a template needs a user message")
        if not isinstance(user, str):
            raise ArgumentTypeError(f"{label}: the user message must be a string; got {type(user).__name__}")
        if not user.strip():
            raise InvalidInputError(
                f"{label} has no user message (user={user!r}); a template needs a user message with a {{prompt}}"
            )
        if system is not None and not isinstance(system, str):
            raise ArgumentTypeError(
                f"{label}: the system message must be a string or None; got {type(system).__name__}"
            )
        where = label if name is not None else f"{label} with user message {user!r}"
        _check_placeholders(user, where)
        if system is not None and "{prompt}" in system:
            raise InvalidInputError(
                f"{where}: the system message {system!r} holds a {{prompt}} placeholder; the prompt goes in the user "
                "message (the system message is literal text)"
            )
        if name is None:
            content = json.dumps([system, user], ensure_ascii=False).encode("utf-8")
            name = "template-" + hashlib.sha256(content).hexdigest()[:12]
        object.__setattr__(self, "user", user)
        object.__setattr__(self, "system", system)
        object.__setattr__(self, "name", name)

    def fill(self, prompt: str) -> str:
        """Return the user message with ``prompt`` in place of ``{prompt}`` (literal braces unescaped)."""
        return self.user.format(prompt=prompt)


def _check_placeholders(user: str, where: str) -> None:
    """Raise unless ``user`` holds exactly one plain ``{prompt}`` field and no other."""
    try:
        fields = [(field, spec, conv) for _, field, spec, conv in string.Formatter().parse(user) if field is not None]
    except ValueError as exc:
        raise InvalidInputError(
            f"{where}: the user message is not a valid template ({exc}); write {{{{ and }}}} for literal braces"
        ) from None
    others = sorted({"{" + field + "}" for field, _, _ in fields if field != "prompt"})
    if others:
        raise InvalidInputError(
            f"{where}: the user message has the placeholder(s) {', '.join(others)}; only {{prompt}} is allowed "
            "(write {{ and }} for literal braces)"
        )
    if any(spec or conv for _, spec, conv in fields):
        raise InvalidInputError(f"{where}: the {{prompt}} placeholder takes no format spec or conversion; got {user!r}")
    if len(fields) != 1:
        raise InvalidInputError(
            f"{where}: the user message must contain exactly one {{prompt}} placeholder; found {len(fields)}"
        )


@dataclass(frozen=True)
class TemplatedInput:
    """One prompt in one template: the text the model sees and where the prompt's own text lies in it.

    Attributes
    ----------
    text : str
        The full input text (chat rendering with the generation prompt, or the plain join).
    prompt_span : tuple of (int, int)
        Start and end character offsets of the prompt in ``text``: ``text[start:end]`` is the prompt exactly.
    template_name : str
        The template's :attr:`PromptTemplate.name`.
    add_special_tokens : bool
        How to encode ``text``: True for a plain join, False where the chat rendering already holds the special
        tokens the tokenizer would add (see the module's notes). Encoding with this value never gives a second BOS.
    """

    text: str
    prompt_span: tuple[int, int]
    template_name: str
    add_special_tokens: bool

    @property
    def prompt(self) -> str:
        """The prompt's text, cut out of :attr:`text` at :attr:`prompt_span`."""
        start, end = self.prompt_span
        return self.text[start:end]

    def token_spans(self, tokenizer: Any) -> tuple[list[int], list[int]]:
        """Split the tokens of the encoded text into the prompt span and the instruction span.

        The text is encoded with ``add_special_tokens=self.add_special_tokens`` and character offsets (a fast
        tokenizer is needed). A token belongs to the prompt span when its characters overlap :attr:`prompt_span`
        (a token shared between the template's text and the prompt counts as the prompt's, as ``char_to_token``
        gives it); every other token, special tokens and zero-width tokens included, belongs to the instruction span.

        Parameters
        ----------
        tokenizer : transformers.PreTrainedTokenizerFast
            The model's tokenizer (the one :func:`render` was given).

        Returns
        -------
        prompt_tokens : list of int
            Indices into the encoded tokens, ascending.
        instruction_tokens : list of int
            Every other index, ascending.

        Raises
        ------
        ArgumentTypeError
            If the tokenizer is not a fast tokenizer (no character offsets).
        InvalidInputError
            If no token overlaps the prompt span.
        """
        if not getattr(tokenizer, "is_fast", False):
            raise ArgumentTypeError(
                f"token spans need a fast tokenizer (character offsets); got {type(tokenizer).__name__}"
            )
        encoding = tokenizer(self.text, add_special_tokens=self.add_special_tokens, return_offsets_mapping=True)
        start, end = self.prompt_span
        prompt_tokens: list[int] = []
        instruction_tokens: list[int] = []
        for index, (first, last) in enumerate(encoding["offset_mapping"]):
            inside = last > first and first < end and last > start
            (prompt_tokens if inside else instruction_tokens).append(index)
        if not prompt_tokens:
            raise InvalidInputError(
                f"the prompt span {self.prompt_span} ({self.prompt!r}) of template {self.template_name!r} covers no "
                f"token of the encoded input ({len(instruction_tokens)} tokens); a prompt needs at least one token"
            )
        return prompt_tokens, instruction_tokens


def _chat_template(tokenizer: Any, chat_template_from: Any) -> str | None:
    """Return the chat template string to render with, or None for a plain join."""
    source = tokenizer if chat_template_from is None else chat_template_from
    if not getattr(source, "chat_template", None):
        if chat_template_from is not None:
            raise InvalidInputError(
                f"chat_template_from ({type(chat_template_from).__name__} "
                f"{getattr(chat_template_from, 'name_or_path', '')!r}) has no chat template"
            )
        return None
    try:
        template = source.get_chat_template()
    except ValueError as exc:  # several named templates and no default
        raise InvalidInputError(f"cannot choose a chat template: {exc}") from None
    return str(template)


def _apply(tokenizer: Any, chat_template: str, messages: list[dict[str, str]]) -> str:
    """Render ``messages`` with ``chat_template`` and the generation prompt, as text."""
    text = tokenizer.apply_chat_template(
        messages, chat_template=chat_template, tokenize=False, add_generation_prompt=True
    )
    if not isinstance(text, str):
        raise InvalidInputError(f"the chat template rendered {type(text).__name__}, not text")
    return text


def _has_system_role(tokenizer: Any, chat_template: str) -> bool:
    """Whether ``chat_template`` takes a system message: it renders one without raising, and shows its text."""
    from jinja2.exceptions import TemplateError

    messages = [{"role": "system", "content": _SYSTEM_SENTINEL}, {"role": "user", "content": "fastprobe user"}]
    try:
        text = _apply(tokenizer, chat_template, messages)
    except (TemplateError, ValueError, TypeError, KeyError, IndexError):
        return False
    return _SYSTEM_SENTINEL in text


def _leading_tokens_missing(tokenizer: Any, text: str) -> bool:
    """Whether encoding ``text`` needs the tokenizer's own special tokens (see the module's notes on special tokens)."""
    with_special = list(tokenizer(text, add_special_tokens=True)["input_ids"])
    without = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if with_special == without:
        return False
    for head in range(len(with_special) - len(without) + 1):
        if with_special[head : head + len(without)] == without:
            leading, trailing = with_special[:head], with_special[head + len(without) :]
            return not trailing and without[:head] != leading
    return False


@dataclass(frozen=True)
class _Layout:
    """A template rendered around the prompt sentinel: the text before and after the prompt, and how to render."""

    template: PromptTemplate
    chat_template: str | None
    fold: bool
    before: str
    after: str
    add_special_tokens: bool

    def text_for(self, tokenizer: Any, prompt: str) -> str:
        """Render the template around ``prompt`` (the real rendering, which :meth:`locate` checks)."""
        user = self.template.fill(prompt)
        system = self.template.system
        if self.chat_template is None:
            return PLAIN_SEPARATOR.join([system, user]) if system else user
        messages = []
        if system is not None and not self.fold:
            messages.append({"role": "system", "content": system})
        elif system:
            user = system + FOLD_SEPARATOR + user
        messages.append({"role": "user", "content": user})
        return _apply(tokenizer, self.chat_template, messages)

    def locate(self, tokenizer: Any, prompt: str) -> TemplatedInput:
        """Render ``prompt`` and return it with its span, or raise if the template changed the prompt's text."""
        text = self.text_for(tokenizer, prompt)
        start = len(self.before)
        if text != self.before + prompt + self.after:
            raise InvalidInputError(
                f"{_NOT_AS_IS} of template {self.template.name!r}: its chat template changes the text around or "
                f"inside the prompt {prompt!r} (trims, escapes or rewrites it), so the prompt span cannot be placed"
            )
        return TemplatedInput(text, (start, start + len(prompt)), self.template.name, self.add_special_tokens)


def _layout(template: PromptTemplate, tokenizer: Any, chat_template: str | None) -> _Layout:
    """Render ``template`` around the prompt sentinel once, deciding the system folding and the special tokens."""
    for part in (template.user, template.system or ""):
        if _PROMPT_SENTINEL in part:
            raise InvalidInputError(f"template {template.name!r} contains fastprobe's internal prompt marker")
    fold = False
    if chat_template is not None and template.system is not None:
        fold = not _has_system_role(tokenizer, chat_template)
    probe = _Layout(template, chat_template, fold, "", "", True)
    text = probe.text_for(tokenizer, _PROMPT_SENTINEL)
    count = text.count(_PROMPT_SENTINEL)
    if count != 1:
        detail = "changes or drops the prompt" if count == 0 else f"repeats the prompt {count} times"
        raise InvalidInputError(f"{_NOT_AS_IS} of template {template.name!r}: its chat template {detail}")
    before, after = text.split(_PROMPT_SENTINEL)
    add_special_tokens = True if chat_template is None else _leading_tokens_missing(tokenizer, text)
    return _Layout(template, chat_template, fold, before, after, add_special_tokens)


def _check_template(template: Any, what: str) -> PromptTemplate:
    if not isinstance(template, PromptTemplate):
        raise ArgumentTypeError(f"{what} must be a PromptTemplate; got {type(template).__name__} {template!r}")
    return template


def _check_prompt(prompt: Any, what: str) -> str:
    if not isinstance(prompt, str):
        raise ArgumentTypeError(f"{what} must be a string; got {type(prompt).__name__} {prompt!r}")
    if not prompt.strip():
        raise InvalidInputError(f"{what} is empty ({prompt!r}); a prompt needs text for the model to read")
    return prompt


def render(template: PromptTemplate, prompt: str, tokenizer: Any, *, chat_template_from: Any = None) -> TemplatedInput:
    """Return the input text the model sees for ``prompt`` in ``template``, with the prompt's character span.

    Parameters
    ----------
    template : PromptTemplate
    prompt : str
        The prompt's own text; not empty or whitespace only.
    tokenizer : transformers.PreTrainedTokenizerBase
        The model's tokenizer: its chat template is used when it has one (and ``chat_template_from`` is None), and
        its special tokens fill the template's special-token variables.
    chat_template_from : transformers.PreTrainedTokenizerBase, optional
        Another tokenizer whose chat template to use (e.g. an instruct model's, for its base model).

    Returns
    -------
    TemplatedInput

    Raises
    ------
    InvalidInputError
        If the prompt is empty, the chat template changes the prompt's text (it is not found as-is in the templated
        input) or renders it other than once, or ``chat_template_from`` has no chat template.
    ArgumentTypeError
        If ``template`` is not a :class:`PromptTemplate` or ``prompt`` not a string.

    Examples
    --------
    >>> from fastprobe.testing import build_tokenizer
    >>> t = PromptTemplate("Continue: {prompt}", system="Be brief.")
    >>> item = render(t, "the world", build_tokenizer())
    >>> item.text, item.prompt, item.add_special_tokens
    ('Be brief. Continue: the world', 'the world', True)
    """
    template = _check_template(template, "template")
    prompt = _check_prompt(prompt, "the prompt")
    return _layout(template, tokenizer, _chat_template(tokenizer, chat_template_from)).locate(tokenizer, prompt)


def render_all(
    templates: PromptTemplate | Sequence[PromptTemplate],
    prompts: Sequence[str],
    tokenizer: Any,
    *,
    chat_template_from: Any = None,
) -> list[list[TemplatedInput]]:
    """Render every prompt in every template; each template is probed once.

    Parameters
    ----------
    templates : PromptTemplate or sequence of PromptTemplate
        With distinct names (the name keys results in the store).
    prompts : sequence of str
        A list of prompts (not a single string), none empty.
    tokenizer, chat_template_from
        As for :func:`render`.

    Returns
    -------
    list of list of TemplatedInput
        ``result[t][p]`` is prompt ``p`` in template ``t``.

    Raises
    ------
    InvalidInputError
        As :func:`render`, naming the prompt's index; also for no templates or two templates with the same name.
    ArgumentTypeError
        If ``prompts`` is a single string or holds a non-string, or a template is not a :class:`PromptTemplate`.
    """
    if isinstance(templates, PromptTemplate):
        templates = [templates]
    if isinstance(templates, str) or not isinstance(templates, Sequence):
        raise ArgumentTypeError(f"templates must be a PromptTemplate or a list of them; got {type(templates).__name__}")
    checked = [_check_template(t, f"templates[{i}]") for i, t in enumerate(templates)]
    if not checked:
        raise InvalidInputError("templates is empty; give at least one PromptTemplate")
    names = [t.name for t in checked]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidInputError(f"templates must have distinct names; {repeated} appear more than once")
    if isinstance(prompts, str):
        raise ArgumentTypeError("prompts must be a list of strings, not str (pass [prompt], not a single string)")
    texts = [_check_prompt(p, f"prompts[{i}]") for i, p in enumerate(prompts)]
    chat_template = _chat_template(tokenizer, chat_template_from)
    layouts = [_layout(t, tokenizer, chat_template) for t in checked]
    out: list[list[TemplatedInput]] = []
    for layout in layouts:
        row = []
        for i, prompt in enumerate(texts):
            try:
                row.append(layout.locate(tokenizer, prompt))
            except InvalidInputError as exc:
                raise InvalidInputError(f"prompts[{i}]: {exc}") from None
        out.append(row)
    return out


#: Workflow B's template set, in this project's own wording: template 0 sends the prompt alone (no system message);
#: templates 1-4 ask, in different ways, for the continuation of the text without an explanation.
WORKFLOW_TEMPLATES: tuple[PromptTemplate, ...] = (
    PromptTemplate("{prompt}", name="plain"),
    PromptTemplate(
        "{prompt}",
        system="You continue texts. Reply with the continuation only, without any explanation.",
        name="continue",
    ),
    PromptTemplate("Continue this text, and do not explain anything:\n\n{prompt}", name="continue-inline"),
    PromptTemplate(
        "Finish the following text. Give only the words that come next, with no commentary.\n\n{prompt}",
        system="You are a writing assistant.",
        name="finish",
    ),
    PromptTemplate(
        "Text: {prompt}",
        system="Write what comes next in the user's text and nothing else: no explanation, no quotes.",
        name="text-label",
    ),
)
