"""reasoning: normalises reasoning into ``reasoning_content``, also in streamed chunks.

Models return their reasoning as a ``reasoning`` field or inline in
``<think>...</think>`` blocks (some omit the opening tag). This interceptor moves it to
``reasoning_content`` and leaves only the answer in ``content``. An unterminated block
is all reasoning (the answer was cut off). In a stream the tags may be split across
chunks: a partial tag is held back until the next chunk decides it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel
from pytest_nel.interceptors.protocol import (
    STRICT,
    Interceptor,
    ProxyRequest,
    ProxyResponse,
    register,
)


class ReasoningConfig(BaseModel):
    """Options of the reasoning interceptor."""

    model_config = STRICT
    start_tag: str = "<think>"
    end_tag: str = "</think>"


def split_reasoning(text: str, start: str, end: str) -> tuple[str | None, str]:
    """``(reasoning, answer)`` of a complete message text."""
    if end in text:
        before, _, after = text.partition(end)
        return before.replace(start, "", 1).strip(), after.strip()
    if text.lstrip().startswith(start):
        return text.lstrip()[len(start) :].strip(), ""
    return None, text


@register("reasoning")
class Reasoning(Interceptor):
    """Rewrites chat messages and stream deltas."""

    Config = ReasoningConfig

    async def on_response(
        self, request: ProxyRequest, response: ProxyResponse
    ) -> ProxyResponse:
        """Normalise every choice (a stream chunk by chunk)."""
        if response.status != 200:
            return response
        if response.chunks is not None:
            response.chunks = self._stream(response.chunks)
            return response
        for choice in (response.body or {}).get("choices") or []:
            message = choice.get("message") if isinstance(choice, dict) else None
            if isinstance(message, dict):
                self._message(message)
        return response

    def _message(self, message: dict[str, Any]) -> None:
        cfg = self.config
        assert isinstance(cfg, ReasoningConfig)
        parts = [message.pop("reasoning", None), message.get("reasoning_content")]
        content = message.get("content")
        if isinstance(content, str):
            found, message["content"] = split_reasoning(
                content, cfg.start_tag, cfg.end_tag
            )
            parts.append(found)
        text = "\n".join(p for p in parts if p)
        if text:
            message["reasoning_content"] = text

    async def _stream(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        cfg = self.config
        assert isinstance(cfg, ReasoningConfig)
        splitter = _DeltaSplitter(cfg.start_tag, cfg.end_tag)
        buffer = b""
        async for chunk in chunks:
            buffer += chunk
            *events, buffer = buffer.split(b"\n\n")
            out = b"".join(_rewrite_event(e, splitter) + b"\n\n" for e in events)
            if out:
                yield out
        if buffer:
            yield buffer


def _rewrite_event(event: bytes, splitter: _DeltaSplitter) -> bytes:
    if not event.startswith(b"data: {"):
        return event
    try:
        data = json.loads(event[6:])
    except ValueError:
        return event
    for choice in data.get("choices") or []:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            continue
        reasoning = delta.pop("reasoning", None) or delta.get("reasoning_content") or ""
        content = delta.get("content")
        if isinstance(content, str):
            thought, delta["content"] = splitter.feed(content)
            reasoning += thought
        if choice.get("finish_reason"):
            thought, rest = splitter.flush()
            reasoning += thought
            delta["content"] = (delta.get("content") or "") + rest
        if reasoning:
            delta["reasoning_content"] = reasoning
    return b"data: " + json.dumps(data).encode()


class _DeltaSplitter:
    """Routes streamed text to reasoning or content across ``<think>`` tags."""

    def __init__(self, start: str, end: str) -> None:
        self.start, self.end = start, end
        self.thinking = False
        self.pending = ""

    def feed(self, text: str) -> tuple[str, str]:
        """``(reasoning, content)`` of this piece; a partial tag is held back."""
        text = self.pending + text
        self.pending = ""
        thought: list[str] = []
        answer: list[str] = []
        while text:
            tags = [self.end] if self.thinking else [self.start, self.end]
            hits = [(text.find(t), t) for t in tags if t in text]
            if not hits:
                keep = max(_partial_suffix(text, t) for t in tags)
                body, self.pending = text[: len(text) - keep], text[len(text) - keep :]
                (thought if self.thinking else answer).append(body)
                break
            idx, tag = min(hits)
            before, text = text[:idx], text[idx + len(tag) :]
            # A closing tag with no opening one: this piece's text before it was
            # reasoning too (earlier pieces are already sent as content).
            (thought if self.thinking or tag == self.end else answer).append(before)
            self.thinking = tag == self.start
        return "".join(thought), "".join(answer)

    def flush(self) -> tuple[str, str]:
        """What is held back, at the end of the stream."""
        rest, self.pending = self.pending, ""
        return (rest, "") if self.thinking else ("", rest)


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that starts ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0
