"""The simple solver: one request per sample to a chat or completions endpoint."""

from __future__ import annotations

import time
from typing import Any

from pytest_nel.solvers.protocol import Generation, SolveTask, TokenUsage

from pytest_nel.client import ModelClient
from pytest_nel.exceptions import ModelError


class SimpleSolver:
    """Sends the rendered prompt (plus an optional system prompt) and reads one choice.

    When a seed is set, repeat ``k`` sends ``seed + k`` so that repeats are distinct
    samples.
    """

    def __init__(
        self,
        client: ModelClient,
        *,
        model: str,
        protocol: str,
        params: dict[str, Any],
        system_prompt: str | None,
    ) -> None:
        self.client = client
        self.model = model
        self.protocol = protocol
        self.params = dict(params)
        self.system_prompt = system_prompt

    def request_body(self, task: SolveTask) -> dict[str, Any]:
        """The JSON body for one sample."""
        body: dict[str, Any] = {"model": self.model}
        if self.protocol == "chat_completions":
            if isinstance(task.prompt, list):
                messages = list(task.prompt)
            else:
                messages = [{"role": "user", "content": task.prompt}]
            if self.system_prompt and not any(
                m.get("role") == "system" for m in messages
            ):
                messages.insert(0, {"role": "system", "content": self.system_prompt})
            body["messages"] = messages
        else:
            if isinstance(task.prompt, list):
                raise ModelError(
                    "a completions endpoint needs a text prompt, not chat messages",
                    category="harness_error",
                )
            text = task.prompt
            body["prompt"] = (
                f"{self.system_prompt}\n\n{text}" if self.system_prompt else text
            )
        body.update(self.params)
        if "seed" in self.params:
            body["seed"] = int(self.params["seed"]) + task.repeat
        return body

    async def solve(self, task: SolveTask) -> Generation:
        """Generate one sample."""
        start = time.perf_counter()
        # The repeat index lets a caching proxy keep repeats apart when no seed is set.
        repeat = {"X-Nel-Repeat": str(task.repeat)}
        data = await self.client.post(self.request_body(task), headers=repeat)
        latency_ms = (time.perf_counter() - start) * 1000
        return parse_response(data, self.protocol, latency_ms, self.client.url)

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self.client.aclose()


def parse_response(
    data: dict[str, Any], protocol: str, latency_ms: float, url: str
) -> Generation:
    """Read the first choice of an OpenAI-style response.

    Raises:
        ModelError: The response has no usable choice.
    """
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ModelError(f"{url}: response has no choices: {str(data)[:200]!r}")
    choice = choices[0]
    reasoning = None
    if protocol == "chat_completions":
        message = choice.get("message") or {}
        text = message.get("content") or ""
        reasoning = message.get("reasoning_content") or message.get("reasoning")
    else:
        text = choice.get("text") or ""
    if not isinstance(text, str):
        raise ModelError(f"{url}: choice content is not text: {str(text)[:200]!r}")
    usage = data.get("usage") or {}
    details = usage.get("completion_tokens_details") or {}
    tokens = TokenUsage(
        prompt=int(usage.get("prompt_tokens") or 0),
        completion=int(usage.get("completion_tokens") or 0),
        reasoning=int(details.get("reasoning_tokens") or 0),
    )
    return Generation(text, choice.get("finish_reason"), tokens, latency_ms, reasoning)
