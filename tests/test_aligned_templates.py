"""Prompt templates for aligned probing: rendered text, the prompt's character span, token spans, special tokens."""

from __future__ import annotations

import pickle

import pytest

from fastprobe.aligned.templates import (
    FOLD_SEPARATOR,
    PLAIN_SEPARATOR,
    WORKFLOW_TEMPLATES,
    PromptTemplate,
    TemplatedInput,
    render,
    render_all,
)
from fastprobe.exceptions import ArgumentTypeError, InvalidInputError
from fastprobe.testing import build_tokenizer

# A chat template with a system role, in the tiny vocabulary's words where possible ("system", "user" and
# "assistant" are unknown words: one <unk> token each).
WITH_SYSTEM = (
    "{{ bos_token }}{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {{ eos_token }} {% endfor %}"
    "{% if add_generation_prompt %}assistant :{% endif %}"
)
# The same, refusing a system message the way real templates do.
RAISES_ON_SYSTEM = (
    "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    + WITH_SYSTEM
)
# The same, silently dropping a system message.
DROPS_SYSTEM = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] != 'system' %}{{ m['role'] }} : {{ m['content'] }} "
    "{{ eos_token }} {% endif %}{% endfor %}{% if add_generation_prompt %}assistant :{% endif %}"
)
# Without a BOS of its own.
NO_BOS = "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}assistant :"
# Templates that change the prompt's text.
TRIMS = "{{ bos_token }}{% for m in messages %}{{ m['role'] }} : {{ m['content'] | trim }} {% endfor %}assistant :"
UPPERS = "{{ bos_token }}{% for m in messages %}{{ m['role'] }} : {{ m['content'] | upper }} {% endfor %}assistant :"
REPEATS = "{{ bos_token }}{% for m in messages %}{{ m['content'] }} {{ m['content'] }} {% endfor %}"


def tokenizer(chat_template: str | None = None, vocabulary: str = "words"):
    tok = build_tokenizer(vocabulary=vocabulary)
    tok.chat_template = chat_template
    return tok


@pytest.fixture(scope="module")
def words():
    return tokenizer()


@pytest.fixture(scope="module")
def smollm2_tokenizer(smollm2_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(smollm2_path))


def check_spans(item: TemplatedInput, tok, prompt: str, *, alone: bool = True) -> tuple[list[int], list[int]]:
    """Check the item against independent references and return its token spans.

    ``alone``: the prompt starts and ends on token boundaries, so its tokens are those of the prompt encoded alone.
    """
    start, end = item.prompt_span
    assert item.text[start:end] == prompt == item.prompt
    encoding = tok(item.text, add_special_tokens=item.add_special_tokens)
    ids = encoding["input_ids"]
    prompt_tokens, instruction_tokens = item.token_spans(tok)
    # workflow B's reference: the tokens of the prompt's characters, through char_to_token
    by_char = {encoding.char_to_token(c) for c in range(start, end)} - {None}
    assert prompt_tokens == sorted(by_char)
    assert prompt_tokens == list(range(prompt_tokens[0], prompt_tokens[-1] + 1))
    if alone:
        assert [ids[i] for i in prompt_tokens] == tok(prompt, add_special_tokens=False)["input_ids"]
    assert sorted(prompt_tokens + instruction_tokens) == list(range(len(ids)))
    assert not set(prompt_tokens) & set(instruction_tokens)
    return prompt_tokens, instruction_tokens


# --- PromptTemplate ---------------------------------------------------------------------------------------------


def test_template_fills_the_prompt_and_unescapes_literal_braces():
    t = PromptTemplate("Say {{hi}} to {prompt}!", system="Be kind.", name="hi")
    assert (t.user, t.system, t.name) == ("Say {{hi}} to {prompt}!", "Be kind.", "hi")
    assert t.fill("the world") == "Say {hi} to the world!"
    assert t.fill("{prompt} {x}") == "Say {hi} to {prompt} {x}!"  # the prompt's own braces are kept as they are


def test_template_default_name_is_a_content_digest():
    a = PromptTemplate("{prompt}", system="S")
    assert a.name.startswith("template-") and len(a.name) == len("template-") + 12
    assert a == PromptTemplate("{prompt}", system="S") and hash(a) == hash(PromptTemplate("{prompt}", system="S"))
    assert a.name != PromptTemplate("{prompt}").name != PromptTemplate("{prompt}", system="").name
    assert a.name != PromptTemplate("{prompt} ", system="S").name
    assert pickle.loads(pickle.dumps(a)) == a
    with pytest.raises(AttributeError):
        a.user = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ("no placeholder", "must contain exactly one {prompt} placeholder; found 0"),
        ("{prompt} and {prompt}", "must contain exactly one {prompt} placeholder; found 2"),
        ("{prompt} for {name}", "the placeholder(s) {name}; only {prompt} is allowed"),
        ("{prompt} {}", "the placeholder(s) {}; only {prompt} is allowed"),
        ("{prompt!r}", "takes no format spec or conversion"),
        ("{prompt:>10}", "takes no format spec or conversion"),
        ("{prompt", "is not a valid template"),
        ("{prompt} }", "is not a valid template"),
    ],
)
def test_template_refuses_bad_placeholders_naming_the_template(user, message):
    with pytest.raises(InvalidInputError, match="prompt template 'mine'") as info:
        PromptTemplate(user, name="mine")
    assert message in str(info.value)
    with pytest.raises(InvalidInputError, match="with user message") as info:  # unnamed: named by its user message
        PromptTemplate(user)
    assert repr(user) in str(info.value)


@pytest.mark.parametrize("user", [None, "", "  \n"])
def test_template_without_a_user_message_is_refused(user):
    with pytest.raises(InvalidInputError, match=r"prompt template 'empty' has no user message"):
        PromptTemplate(user, system="You are helpful.", name="empty")  # type: ignore[arg-type]


def test_template_refuses_wrong_types_and_a_prompt_in_the_system_message():
    with pytest.raises(ArgumentTypeError, match="the user message must be a string; got int"):
        PromptTemplate(3)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="the system message must be a string or None; got list"):
        PromptTemplate("{prompt}", system=["x"])  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="name must be a string; got int"):
        PromptTemplate("{prompt}", name=1)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="name must be a non-empty string"):
        PromptTemplate("{prompt}", name="")
    with pytest.raises(InvalidInputError, match=r"'sys': the system message 'Read \{prompt\}' holds a \{prompt\}"):
        PromptTemplate("{prompt}", system="Read {prompt}", name="sys")


# --- plain join (no chat template) -------------------------------------------------------------------------------


def test_plain_join_with_a_system_message(words):
    t = PromptTemplate("Tell me about {prompt} .", system="Do not say", name="p")
    item = render(t, "the world", words)
    assert item == TemplatedInput("Do not say Tell me about the world .", (25, 34), "p", True)
    assert PLAIN_SEPARATOR == " "
    prompt_tokens, instruction_tokens = check_spans(item, words, "the world")
    # [<s>, Do, not, say, Tell, me, about, the, world, .]: the BOS the tokenizer adds belongs to the instruction.
    assert prompt_tokens == [7, 8]
    assert instruction_tokens == [0, 1, 2, 3, 4, 5, 6, 9]
    ids = words(item.text, add_special_tokens=item.add_special_tokens)["input_ids"]
    assert ids.count(words.bos_token_id) == 1 and ids[0] == words.bos_token_id


@pytest.mark.parametrize("system", [None, ""])
def test_plain_join_skips_a_missing_or_empty_system_message(words, system):
    item = render(PromptTemplate("{prompt}", system=system, name="bare"), "the world", words)
    assert (item.text, item.prompt_span, item.add_special_tokens) == ("the world", (0, 9), True)
    assert check_spans(item, words, "the world") == ([1, 2], [0])


def test_token_shared_with_the_template_text_counts_as_the_prompts(words):
    # "aboutthe" is one (unknown) word: it holds template and prompt characters, and goes to the prompt span.
    item = render(PromptTemplate("about{prompt} world", name="glued"), "the", words)
    assert item.text == "aboutthe world" and item.prompt_span == (5, 8)
    assert item.token_spans(words) == ([1], [0, 2])


def test_byte_tokens_cover_exactly_the_prompts_bytes():
    tok = tokenizer(vocabulary="bytes")
    prompt = "un café, très bon"
    item = render(PromptTemplate("Écris la suite : {prompt}", system="Système"), prompt, tok)
    start, end = item.prompt_span
    assert item.text[start:end] == prompt
    prompt_tokens, instruction_tokens = item.token_spans(tok)
    first = 1 + len(item.text[:start].encode())  # the BOS, then one token per byte
    assert prompt_tokens == list(range(first, first + len(prompt.encode())))
    assert instruction_tokens == list(range(first))


# --- chat templates ---------------------------------------------------------------------------------------------


def test_chat_template_with_a_system_role_writes_its_own_bos():
    tok = tokenizer(WITH_SYSTEM)
    item = render(PromptTemplate("Tell me about {prompt}", system="Be brief", name="c"), "the world", tok)
    expected = "<s>system : Be brief </s> user : Tell me about the world </s> assistant :"
    assert item.text == expected
    assert item.prompt_span == (expected.index("the world"), expected.index("the world") + 9)
    assert item.add_special_tokens is False
    ids = tok(item.text, add_special_tokens=item.add_special_tokens)["input_ids"]
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1  # no double BOS
    assert tok(item.text)["input_ids"][:2] == [tok.bos_token_id] * 2  # which the default encoding would give
    _, instruction_tokens = check_spans(item, tok, "the world")
    assert [ids[i] for i in instruction_tokens] == tok(expected.replace(" the world", ""), add_special_tokens=False)[
        "input_ids"
    ]


def test_empty_system_message_is_sent_where_the_template_has_a_system_role():
    tok = tokenizer(WITH_SYSTEM)
    item = render(PromptTemplate("{prompt}", system=""), "the world", tok)
    assert item.text == "<s>system :  </s> user : the world </s> assistant :"
    item = render(PromptTemplate("{prompt}"), "the world", tok)
    assert item.text == "<s>user : the world </s> assistant :"


@pytest.mark.parametrize("template", [RAISES_ON_SYSTEM, DROPS_SYSTEM])
def test_system_message_is_folded_into_the_user_turn_without_a_system_role(template):
    tok = tokenizer(template)
    item = render(PromptTemplate("Tell me about {prompt}", system="Be brief", name="f"), "the world", tok)
    assert FOLD_SEPARATOR == "\n\n"
    assert item.text == "<s>user : Be brief\n\nTell me about the world </s> assistant :"
    assert item.add_special_tokens is False
    check_spans(item, tok, "the world")
    # an empty system text folds to nothing
    item = render(PromptTemplate("{prompt}", system=""), "the world", tok)
    assert item.text == "<s>user : the world </s> assistant :"


def test_chat_template_without_a_bos_gets_the_tokenizers_bos_once():
    tok = tokenizer(NO_BOS)
    item = render(PromptTemplate("{prompt}", system="Be brief"), "the world", tok)
    assert item.text == "system : Be brief user : the world assistant :"
    assert item.add_special_tokens is True
    ids = tok(item.text, add_special_tokens=item.add_special_tokens)["input_ids"]
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    assert check_spans(item, tok, "the world")[1][0] == 0  # the added BOS is an instruction token


def test_chat_template_from_another_tokenizer(words):
    source = tokenizer(WITH_SYSTEM)
    t = PromptTemplate("Tell me about {prompt}", system="Be brief")
    borrowed = render(t, "the world", words, chat_template_from=source)
    assert borrowed == render(t, "the world", source)
    assert render(t, "the world", words).text == "Be brief Tell me about the world"  # its own: a plain join
    # the template's special-token variables come from the model's own tokenizer
    other_bos = tokenizer(WITH_SYSTEM)
    other_bos.add_special_tokens({"bos_token": "<pad>"})
    assert render(t, "the world", other_bos, chat_template_from=source).text.startswith("<pad>system")
    with pytest.raises(InvalidInputError, match="chat_template_from .* has no chat template"):
        render(t, "the world", source, chat_template_from=words)


def test_chat_template_that_changes_the_prompt_is_detected():
    tok = tokenizer(TRIMS)
    t = PromptTemplate("{prompt}", name="trimmed")
    assert render(t, "the world", tok).text == "<s>user : the world assistant :"  # nothing to trim: fine
    with pytest.raises(InvalidInputError) as info:
        render(t, " the world ", tok)
    assert "the prompt's text is not found as-is in the templated input of template 'trimmed'" in str(info.value)
    assert "' the world '" in str(info.value)
    with pytest.raises(InvalidInputError, match="not found as-is in the templated input of template 'up'.*changes"):
        render(PromptTemplate("{prompt}", name="up"), "the world", tokenizer(UPPERS))
    with pytest.raises(InvalidInputError, match="of template 'twice'.*repeats the prompt 2 times"):
        render(PromptTemplate("{prompt}", name="twice"), "the world", tokenizer(REPEATS))


# --- the prompt -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prompt", ["", "   ", "\n"])
def test_empty_prompt_is_refused(words, prompt):
    with pytest.raises(InvalidInputError, match=r"the prompt is empty .*a prompt needs text"):
        render(PromptTemplate("{prompt}"), prompt, words)
    with pytest.raises(InvalidInputError, match=r"prompts\[1\] is empty"):
        render_all(PromptTemplate("{prompt}"), ["the world", prompt], words)


def test_wrong_argument_types(words):
    with pytest.raises(ArgumentTypeError, match="the prompt must be a string; got int"):
        render(PromptTemplate("{prompt}"), 3, words)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="template must be a PromptTemplate; got str"):
        render("{prompt}", "the world", words)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="prompts must be a list of strings, not str"):
        render_all(PromptTemplate("{prompt}"), "the world", words)
    with pytest.raises(ArgumentTypeError, match=r"templates\[1\] must be a PromptTemplate; got str"):
        render_all([PromptTemplate("{prompt}"), "{prompt}"], ["the world"], words)  # type: ignore[list-item]


def test_token_spans_refuse_a_span_without_tokens_and_slow_tokenizers(words):
    item = TemplatedInput("the world", (3, 4), "t", True)  # a lone space: no token
    with pytest.raises(InvalidInputError, match=r"the prompt span \(3, 4\) \(' '\) of template 't' covers no token"):
        item.token_spans(words)

    class Slow:
        is_fast = False

    with pytest.raises(ArgumentTypeError, match="token spans need a fast tokenizer .*; got Slow"):
        item.token_spans(Slow())


# --- several templates ------------------------------------------------------------------------------------------


def test_render_all_is_render_for_every_template_and_prompt():
    tok = tokenizer(RAISES_ON_SYSTEM)
    prompts = ["the world", "a dog and a cat", "Paris"]
    table = render_all(WORKFLOW_TEMPLATES, prompts, tok)
    assert [[item.template_name for item in row] for row in table] == [[t.name] * 3 for t in WORKFLOW_TEMPLATES]
    for template, row in zip(WORKFLOW_TEMPLATES, table, strict=True):
        assert row == [render(template, p, tok) for p in prompts]
        for prompt, item in zip(prompts, row, strict=True):
            check_spans(item, tok, prompt)
    assert render_all(WORKFLOW_TEMPLATES[0], ["the world"], tok) == [[render(WORKFLOW_TEMPLATES[0], "the world", tok)]]


def test_render_all_refuses_repeated_names_and_no_templates(words):
    with pytest.raises(InvalidInputError, match=r"distinct names; \['x'\] appear more than once"):
        render_all([PromptTemplate("{prompt}", name="x"), PromptTemplate("a {prompt}", name="x")], ["the"], words)
    with pytest.raises(InvalidInputError, match="templates is empty"):
        render_all([], ["the"], words)
    with pytest.raises(InvalidInputError, match=r"prompts\[1\]: the prompt's text is not found as-is"):
        render_all(PromptTemplate("{prompt}"), ["the world", " the world"], tokenizer(TRIMS))


def test_workflow_templates():
    assert len(WORKFLOW_TEMPLATES) == 5
    plain = WORKFLOW_TEMPLATES[0]
    assert (plain.user, plain.system) == ("{prompt}", None)
    assert len({t.name for t in WORKFLOW_TEMPLATES}) == 5
    for t in WORKFLOW_TEMPLATES[1:]:
        assert t.user != "{prompt}" or t.system  # an instruction somewhere


# --- the real SmolLM2 tokenizer ---------------------------------------------------------------------------------


def test_smollm2_chat_template(smollm2_tokenizer):
    tok = smollm2_tokenizer
    prompt = " You are such a"
    item = render(PromptTemplate("Continue: {prompt}", system="Be brief.", name="s"), prompt, tok)
    expected = (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nContinue:  You are such a<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert item.text == expected
    assert item.text.startswith(tok.bos_token) and item.add_special_tokens is False
    assert tok(item.text, add_special_tokens=False)["input_ids"] == tok(item.text)["input_ids"]  # no second BOS
    prompt_tokens, _ = check_spans(item, tok, prompt)
    ids = tok(item.text, add_special_tokens=False)["input_ids"]
    assert tok.decode([ids[i] for i in prompt_tokens]) == prompt


def test_smollm2_workflow_templates_and_a_base_model_through_its_template(smollm2_tokenizer):
    prompts = ["The weather today is", "I can't believe you would say"]
    n_glued = 0
    for row in render_all(WORKFLOW_TEMPLATES, prompts, smollm2_tokenizer):
        for prompt, item in zip(prompts, row, strict=True):
            assert item.text.endswith("<|im_end|>\n<|im_start|>assistant\n")
            # "Text: The": the token " The" holds the template's space and the prompt's "The": it is the prompt's
            glued = item.text[item.prompt_span[0] - 1] == " "
            n_glued += glued
            prompt_tokens, _ = check_spans(item, smollm2_tokenizer, prompt, alone=not glued)
            ids = smollm2_tokenizer(item.text, add_special_tokens=False)["input_ids"]
            decoded = smollm2_tokenizer.decode([ids[i] for i in prompt_tokens])
            assert decoded == (" " + prompt if glued else prompt)
    assert n_glued == len(prompts)  # template 4's prompts, after "Text: "
    # template 0 sends no system message: SmolLM2's template adds its default one
    assert "You are a helpful AI assistant" in render(WORKFLOW_TEMPLATES[0], prompts[0], smollm2_tokenizer).text
    # a tokenizer without a chat template, fed through SmolLM2's (which writes no "<s>"): one BOS, added on encoding
    words = tokenizer(vocabulary="bytes")
    item = render(WORKFLOW_TEMPLATES[1], "the world", words, chat_template_from=smollm2_tokenizer)
    assert item.text.startswith("<|im_start|>system\nYou continue texts.") and item.add_special_tokens is True
    ids = words(item.text, add_special_tokens=item.add_special_tokens)["input_ids"]
    assert ids.count(words.bos_token_id) == 1 and ids[0] == words.bos_token_id
    check_spans(item, words, "the world")
