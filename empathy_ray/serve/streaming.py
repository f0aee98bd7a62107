"""Split a growing CoE completion into `reasoning_content` and `content` deltas while it streams.

The model writes `<empathy_think>…</empathy_think><answer>…</answer>`. A streaming client should see
the CoE arrive as reasoning and the reply as content, never a tag, and never a half-written tag
(`<ans` may be the start of `<answer>`), so a trailing fragment that could still become a tag is
held back until the next token decides it. At the end the content is reconciled with `coe.parse`,
so a stream and a non-streamed reply of the same text end with the same answer.

`CheckedStream` adds the output check on top: every delta is shown only after the check has seen
the whole sentence it belongs to (see `releasable`), so a harmful sentence is never shown, while a
safe answer streams with a delay of one sentence rather than waiting for the whole answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from empathy_ray.domain import coe

_OPEN_THINK, _CLOSE_THINK = f"<{coe.THINK}>", f"</{coe.THINK}>"
_OPEN_ANSWER, _CLOSE_ANSWER = f"<{coe.ANSWER}>", f"</{coe.ANSWER}>"
_TAGS = tuple(f"<{c}{n}>" for n in (coe.THINK, coe.ANSWER, *coe.LAYERS) for c in ("", "/"))


def _hold_back_partial_tag(text: str) -> str:
    """Drop a tail that the next tokens may still change: a tag's start, or half a UTF-8 character."""
    text = text.rstrip("\ufffd")
    cut = text.rfind("<")
    if cut != -1 and ">" not in text[cut:] and any(t.startswith(text[cut:]) for t in _TAGS):
        return text[:cut]
    return text


def _views(text: str, final: bool) -> tuple[str, str]:
    """(reasoning, content) of the text so far."""
    if not final:
        text = _hold_back_partial_tag(text)
    reasoning, rest = "", text
    head = text.lstrip()
    if head.startswith(_OPEN_THINK) or (not final and _OPEN_THINK.startswith(head)):
        body = head[len(_OPEN_THINK) :]
        end = body.find(_CLOSE_THINK)
        reasoning, rest = (body, "") if end == -1 else (body[:end], body[end + len(_CLOSE_THINK) :])
    if final:
        return reasoning.strip(), coe.parse(text).answer
    if _OPEN_ANSWER in rest:
        content = rest.split(_OPEN_ANSWER, 1)[1].split(_CLOSE_ANSWER, 1)[0]
    elif reasoning or head.startswith("<"):
        content = ""  # between the CoE and <answer>: wait for the tag
    else:
        content = rest  # a model that answers without any CoE: stream it as is
    return reasoning.strip(), coe.strip_tags(content).lstrip().rstrip()


class CoEStream:
    """Feed the cumulative text after every engine step; get the new (reasoning, content) pieces."""

    def __init__(self) -> None:
        self.reasoning = ""
        self.content = ""

    def feed(self, text: str, final: bool = False) -> tuple[str, str]:
        reasoning, content = _views(text, final)
        deltas = []
        for name, new in (("reasoning", reasoning), ("content", content)):
            sent = getattr(self, name)
            # Views only grow while streaming; if the final parse disagrees with what was already
            # sent (a malformed completion), nothing can be taken back, so nothing more is added.
            delta = new[len(sent) :] if new.startswith(sent) else ""
            setattr(self, name, sent + delta)
            deltas.append(delta)
        return deltas[0], deltas[1]


# A sentence ends at Chinese or English end punctuation, or a line break. The output check sees whole
# sentences; a sentence that runs past _LONG_SENTENCE characters is released up to _HOLD characters
# before its end (more than any output-check rule spans), so a model that never ends a sentence
# still streams.
_SENTENCE_END = re.compile(r"[。！？!?；;…\n]|\.\s")
_HOLD = 80
_LONG_SENTENCE = 200


def releasable(text: str, final: bool) -> int:
    """How many characters of a growing field may be shown now: the text up to the last sentence end."""
    if final:
        return len(text)
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    cut = ends[-1] if ends else 0
    return max(cut, len(text) - _HOLD) if len(text) - cut > _LONG_SENTENCE else cut


class CheckedStream:
    """A `CoEStream` whose deltas are shown only after the output check has passed the whole text.

    Each field (reasoning, content) is released sentence by sentence: the unfinished sentence is held
    back, and before anything new is released, everything received so far is checked. Once the check
    fires the stream is `blocked` and releases nothing more; what it had released had passed.
    """

    def __init__(self, blocks: Callable[[str, str], bool]) -> None:
        self.blocks = blocks  # (reasoning, content) -> True when they must not be shown
        self.split = CoEStream()
        self.received = {"reasoning_content": "", "content": ""}
        self.sent = {"reasoning_content": 0, "content": 0}
        self.blocked = False

    def feed(self, text: str, final: bool = False) -> dict[str, str]:
        """The delta that may be shown now (field -> new text); empty when nothing is, or once blocked."""
        if self.blocked:
            return {}
        for name, new in zip(self.received, self.split.feed(text, final), strict=True):
            self.received[name] += new
        cuts = {name: releasable(value, final) for name, value in self.received.items()}
        if all(cuts[name] <= self.sent[name] for name in cuts):
            return {}
        if self.blocks(self.received["reasoning_content"], self.received["content"]):
            self.blocked = True
            return {}
        delta = {name: self.received[name][self.sent[name] : cuts[name]] for name in cuts}
        self.sent = cuts
        return {name: value for name, value in delta.items() if value}
