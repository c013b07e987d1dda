"""Training samples for CCM from the chat generator (train/data.py).

Each history turn is one compressed chunk: the delta ccmem feeds for the user message (template text
included) followed by the given reply. The question's delta and the reference reply form the input I, O.
Loss (labels): the final reply and its EOS, which read the whole memory; with `history_loss`, also the
replies of turns 2..T with their EOS (they read the memory of the earlier turns; the first turn's reply
reads no memory, so its loss could not train the adapter).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ccm_chat import record_turns  # noqa: E402
from ccm_layout import IGNORE, build_sample, reply_labels  # noqa: E402


def record_sample(codec, record, n, mode, sink, vocab, eos, history_loss=True, system=None):
    """A record with a "reply" (train/data.py generate()) as one training Sample."""
    turns, question, answer = record_turns(codec, record, reply=record["reply"], system=system)
    chunks, labels = [], []
    for t, (delta, reply) in enumerate(turns):
        chunks.append(delta + reply)
        trained = history_loss and t > 0
        labels.append(reply_labels(len(delta), reply, eos) if trained else [IGNORE] * (len(delta) + len(reply)))
    inp = question + answer
    return build_sample(chunks, labels, inp, reply_labels(len(question), answer, eos), n, mode, sink, vocab)


def end_of_turn_id(codec, model_config):
    """The id a reply ends with: the tokenizer's eos_token, else the model config's (first) eos_token_id."""
    if codec.eos_id is not None:
        return codec.eos_id
    eos = model_config.eos_token_id
    return eos[0] if isinstance(eos, list) else eos
