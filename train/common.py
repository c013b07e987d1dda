"""Chat format shared by the base-model and adapter trainers: special tokens, the jinja chat template, and
the tokenization of a chat exactly as ccmem's Chat (src/engine/chat.ts) feeds it.

ccmem renders all messages with add_generation_prompt after each user message, checks that the render
starts with the previous one, and tokenizes only the new text (the first delta with special tokens, so the
post-processor prepends BOS; later deltas without). A reply's final end-of-turn token is never fed: the
template renders it at the start of the next delta. So a chat becomes
  [BOS] enc("<|user|>U1<|end|>\\n<|assistant|>") enc(R1) enc("<|end|>\\n<|user|>U2<|end|>\\n<|assistant|>") enc(R2) ...
and encode_chat reproduces that token for token.
"""

BOS = "<|bos|>"
END = "<|end|>"  # end of a turn; the model's EOS
USER = "<|user|>"
ASSISTANT = "<|assistant|>"
SYSTEM = "<|system|>"
PAD = "<|pad|>"
SPECIAL_TOKENS = [PAD, BOS, END, USER, ASSISTANT, SYSTEM]  # ids 0..5 in this order

# Prefix-stable: each message renders on its own, so a longer conversation's render extends a shorter one.
CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m.role == 'system' %}<|system|>{{ m.content }}<|end|>\n"
    "{% elif m.role == 'user' %}<|user|>{{ m.content }}<|end|>\n"
    "{% else %}<|assistant|>{{ m.content }}<|end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def render(messages, add_generation_prompt):
    """Python twin of CHAT_TEMPLATE (messages: [{"role", "content"}])."""
    heads = {"system": SYSTEM, "user": USER, "assistant": ASSISTANT}
    text = "".join(f"{heads[m['role']]}{m['content']}{END}\n" for m in messages)
    return text + (ASSISTANT if add_generation_prompt else "")


def chat_segments(history, question, reply=None):
    """The chat as ccmem feeds it: a list of (kind, text), kind "prompt" for a rendered delta (user turn
    plus generation prompt, led by the previous reply's end marker) and "reply" for an assistant reply.
    history: [{"user", "assistant"}]; the question is the last user turn; reply, if given, answers it."""
    segments = []
    users = [t["user"] for t in history] + [question]
    replies = [t["assistant"] for t in history] + ([reply] if reply is not None else [])
    for i, user in enumerate(users):
        lead = END + "\n" if i > 0 else ""
        segments.append(("prompt", f"{lead}{USER}{user}{END}\n{ASSISTANT}"))
        if i < len(replies):
            segments.append(("reply", replies[i]))
    return segments


def encode_chat(tokenizer, history, question, reply=None):
    """Token ids of the chat (tokenizers.Tokenizer) and, per id, whether it is an assistant target: a
    reply token, or the end marker that closes a reply. With `reply`, a final END closes it.
    Returns (ids, targets, final_start): final_start is the index of the question's reply's first id."""
    segments = chat_segments(history, question, reply)
    encodings = tokenizer.encode_batch([text for _, text in segments], add_special_tokens=False)
    end = tokenizer.token_to_id(END)
    ids, targets = [tokenizer.token_to_id(BOS)], [False]
    final_start = None
    for (kind, _), enc in zip(segments, encodings):
        seg = enc.ids
        if kind == "reply":
            final_start = len(ids)
            targets.extend([True] * len(seg))
        else:
            # a delta after a reply starts with that reply's end marker: an assistant target
            targets.extend([i == 0 and seg[0] == end for i in range(len(seg))])
        ids.extend(seg)
    if reply is None:
        return ids, targets, None
    ids.append(end)
    targets.append(True)
    return ids, targets, final_start
