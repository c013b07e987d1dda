"""Chat turns as ccmem feeds them (src/engine/chat.ts), for CCM training and PyTorch inference.

ccmem renders the conversation with the model's chat template (tokenizer_config.json's chat_template or
chat_template.jinja; a plain "User: / Assistant:" template for models without one) and tokenizes only the
text its cache does not hold yet: the first delta with special tokens (BOS), later ones without. A turn's
compressed chunk is that delta (user message + generation prompt, after the previous reply's end-of-turn
text) followed by the reply's tokens; the reply's EOS is never fed. This module reproduces exactly that
with the `tokenizers` library and jinja2, mirroring src/model/tokenizer.ts (add_bos_token/add_eos_token
override the tokenizer.json post-processor; the template sees bos_token, eos_token, unk_token, pad_token).
"""

import datetime
import json
import os

import jinja2
import jinja2.sandbox
from tokenizers import Tokenizer

# src/engine/chat.ts PLAIN_CHAT_TEMPLATE, character for character
PLAIN_CHAT_TEMPLATE = (
    "{% for m in messages %}{% if m.role == 'system' %}{{ m.content }}\n"
    "{% elif m.role == 'user' %}User: {{ m.content }}\n{% else %}Assistant:{{ m.content }}\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def _token_text(value):
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def _template_of(config):
    t = config.get("chat_template")
    if isinstance(t, str):
        return t
    if isinstance(t, list):
        for named in t:
            if isinstance(named, dict) and named.get("name") == "default" and isinstance(named.get("template"), str):
                return named["template"]
    return None


class ChatCodec:
    """A model folder's tokenizer and chat template, used the way ccmem uses them."""

    def __init__(self, model_dir):
        self.tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        config_path = os.path.join(model_dir, "tokenizer_config.json")
        self.config = json.load(open(config_path, encoding="utf-8")) if os.path.exists(config_path) else {}
        template = _template_of(self.config)
        jinja_path = os.path.join(model_dir, "chat_template.jinja")
        if template is None and os.path.exists(jinja_path):
            template = open(jinja_path, encoding="utf-8").read()
        self.has_template = template is not None
        env = jinja2.sandbox.ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
        )
        env.globals["raise_exception"] = _raise
        env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)  # Llama 3 templates
        self.template = env.from_string(template if template is not None else PLAIN_CHAT_TEMPLATE)
        self.bos_id = self._id(self.config.get("bos_token"))
        self.eos_id = self._id(self.config.get("eos_token"))

    def _id(self, value):
        text = _token_text(value)
        return None if text is None else self.tok.token_to_id(text)

    def encode(self, text, special):
        """src/model/tokenizer.ts encode(text, {addSpecialTokens: special})."""
        add_bos, add_eos = self.config.get("add_bos_token"), self.config.get("add_eos_token")
        if not isinstance(add_bos, bool) and not isinstance(add_eos, bool):
            return self.tok.encode(text, add_special_tokens=special).ids
        ids = self.tok.encode(text, add_special_tokens=False).ids
        if special and add_bos is True and self.bos_id is not None:
            ids.insert(0, self.bos_id)
        if special and add_eos is True and self.eos_id is not None:
            ids.append(self.eos_id)
        return ids

    def decode(self, ids):
        return self.tok.decode(ids, skip_special_tokens=True)

    def render(self, messages, add_generation_prompt):
        c = self.config
        return self.template.render(
            messages=messages,
            add_generation_prompt=add_generation_prompt,
            bos_token=_token_text(c.get("bos_token")) or "",
            eos_token=_token_text(c.get("eos_token")) or "",
            unk_token=_token_text(c.get("unk_token")) or "",
            pad_token=_token_text(c.get("pad_token")) or "",
        )


def _raise(message):
    raise jinja2.exceptions.TemplateError(message)


class ChatFeed:
    """The token ids ccmem's Chat feeds, turn by turn: user(text) gives the delta ids of a new user turn."""

    def __init__(self, codec, system=None):
        self.codec = codec
        self.messages = [{"role": "system", "content": system}] if system else []
        self.rendered = ""

    def user(self, text):
        full = self.codec.render(self.messages + [{"role": "user", "content": text}], True)
        if not full.startswith(self.rendered):
            raise ValueError("the chat template does not render turns incrementally")
        ids = self.codec.encode(full[len(self.rendered) :], special=self.rendered == "")
        self.messages.append({"role": "user", "content": text})
        self.rendered = full
        return ids

    def assistant(self, text):
        """The reply's ids (tokenized on their own, as a given reply is fed); the EOS is not among them."""
        self.messages.append({"role": "assistant", "content": text})
        self.rendered += text
        return self.codec.encode(text, special=False)


def record_turns(codec, record, reply=None, system=None):
    """A record as ccmem feeds it: per history turn (delta ids, reply ids), then the question's delta ids
    (the first delta when the history is empty) and the reply ids (`reply`, when given)."""
    feed = ChatFeed(codec, system)
    turns = []
    for turn in record["history"]:
        delta = feed.user(turn["user"])
        turns.append((delta, feed.assistant(turn["assistant"])))
    question = feed.user(record["question"])
    answer = codec.encode(reply, special=False) if reply is not None else None
    return turns, question, answer


def separators(codec):
    """The template's text around a later user message: {"user": before it, "assistant": after it}, without
    BOS (docs/adapters.md); {} when the template gives no such split."""
    feed = ChatFeed(codec)
    feed.user("Hello.")
    feed.assistant("Hi.")
    marker = "Marker."
    full = codec.render(feed.messages + [{"role": "user", "content": marker}], True)
    delta = full[len(feed.rendered) :]
    if not full.startswith(feed.rendered) or delta.count(marker) != 1:
        return {}
    before, after = delta.split(marker)
    out = {}
    if before:
        out["user"] = codec.encode(before, special=False)
    if after:
        out["assistant"] = codec.encode(after, special=False)
    return out
