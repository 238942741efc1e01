"""Tests for the fake OpenAI-compatible model server, over real loopback HTTP."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_nel.testing.fake_model import FakeModel, Gsm8kAnswers, parse_directives

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("NEL_DATASETS_DIR", REPO.parent / "shared" / "datasets"))
GSM8K_TEST = DATASETS / "openai" / "gsm8k" / "main" / "test.jsonl"
needs_gsm8k = pytest.mark.skipif(not GSM8K_TEST.exists(), reason="no GSM8K test set")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeModel]:
    with FakeModel() as fake:
        yield fake


@pytest.fixture
def fm(server: FakeModel) -> FakeModel:
    server.reset()
    return server


@pytest.fixture
def client(fm: FakeModel) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fm.base_url, trust_env=False, timeout=5.0) as http:
        yield http


def chat(client: httpx.Client, prompt: Any, timeout: float = 5.0) -> httpx.Response:
    messages = [{"role": "user", "content": prompt}]
    body = {"model": "m", "messages": messages}
    return client.post("/chat/completions", json=body, timeout=timeout)


def content(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


def sdk(fm: FakeModel, timeout: float = 5.0) -> Any:
    openai = pytest.importorskip("openai")
    return openai.OpenAI(
        base_url=fm.base_url, api_key="sk-test", max_retries=0, timeout=timeout
    )


def test_health_and_models(fm: FakeModel, client: httpx.Client) -> None:
    assert httpx.get(fm.url + "/health", trust_env=False).json() == {"status": "ok"}
    assert [m["id"] for m in client.get("/models").json()["data"]] == ["fake"]


def test_chat_reply_is_openai_shaped(client: httpx.Client) -> None:
    system = {"role": "system", "content": "Be brief."}
    user = {"role": "user", "content": "What is six times seven?"}
    body = {"model": "my-model", "messages": [system, user]}
    reply = client.post("/chat/completions", json=body).json()
    assert reply["object"] == "chat.completion"
    assert reply["model"] == "my-model"
    assert reply["id"] and isinstance(reply["created"], int)
    choice = reply["choices"][0]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"] == {"role": "assistant", "content": "The answer is 42."}
    prompt_tokens = math.ceil((len("Be brief.") + len(user["content"])) / 4)
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": 5}
    usage["total_tokens"] = prompt_tokens + 5
    assert reply["usage"] == usage


def test_completions_reply(client: httpx.Client) -> None:
    body = {"model": "m", "prompt": "Say something.\nSAY: hi there"}
    reply = client.post("/completions", json=body).json()
    assert reply["object"] == "text_completion"
    assert reply["choices"][0]["text"] == "hi there"
    assert reply["usage"]["prompt_tokens"] == math.ceil(len(body["prompt"]) / 4)


def test_openai_sdk_chat_and_completions(fm: FakeModel) -> None:
    openai_client = sdk(fm)
    messages = [{"role": "user", "content": "SAY: hello"}]
    reply = openai_client.chat.completions.create(model="m", messages=messages)
    assert reply.choices[0].message.content == "hello"
    assert reply.usage.total_tokens == 5
    text = openai_client.completions.create(model="m", prompt="FINISH: length")
    assert text.choices[0].text == "The answer is 42."
    assert text.choices[0].finish_reason == "length"


def test_say_lines_join_and_finish_sets_the_reason(client: httpx.Client) -> None:
    prompt = "Intro text\nSAY: first\\nsecond\n  SAY: third  \nFINISH: length\nend"
    reply = chat(client, prompt).json()["choices"][0]
    assert reply["message"]["content"] == "first\nsecond\nthird"
    assert reply["finish_reason"] == "length"


def test_directives_count_only_on_their_own_line() -> None:
    assert parse_directives("Please SAY: hi") is None
    assert parse_directives("no directive at all") is None
    with pytest.raises(ValueError, match="unknown FAULT"):
        parse_directives("FAULT: 418")


def test_list_content_parts_are_joined(client: httpx.Client) -> None:
    parts = [{"type": "text", "text": "Look:"}, {"type": "text", "text": "SAY: ok"}]
    assert content(chat(client, parts)) == "ok"


@pytest.mark.parametrize("status", [400, 401, 404, 408, 429, 500, 502, 503])
def test_status_faults(client: httpx.Client, status: int) -> None:
    response = chat(client, f"FAULT: {status}")
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code"}
    assert "retry-after" not in response.headers


@pytest.mark.parametrize("status", [401, 429, 500, 503])
def test_openai_sdk_sees_status_faults(fm: FakeModel, status: int) -> None:
    openai = pytest.importorskip("openai")
    messages = [{"role": "user", "content": f"FAULT: {status}"}]
    with pytest.raises(openai.APIStatusError) as raised:
        sdk(fm).chat.completions.create(model="m", messages=messages)
    assert raised.value.status_code == status


def test_retry_after_header(client: httpx.Client) -> None:
    assert chat(client, "FAULT: 429 retry-after=1.5").headers["retry-after"] == "1.5"
    assert chat(client, "FAULT: 503x1 retry-after=2").headers["retry-after"] == "2"


def test_reset_drops_the_connection(fm: FakeModel, client: httpx.Client) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        chat(client, "FAULT: reset")
    openai = pytest.importorskip("openai")
    messages = [{"role": "user", "content": "FAULT: reset"}]
    with pytest.raises(openai.APIConnectionError):
        sdk(fm).chat.completions.create(model="m", messages=messages)
    assert fm.stats()["by_status"] == {"reset": 2}


def test_malformed_is_not_json(fm: FakeModel, client: httpx.Client) -> None:
    response = chat(client, "FAULT: malformed")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()
    messages = [{"role": "user", "content": "FAULT: malformed"}]
    with pytest.raises(ValueError):
        sdk(fm).chat.completions.create(model="m", messages=messages)


def test_nochoices_and_garbage(client: httpx.Client) -> None:
    empty = chat(client, "FAULT: nochoices")
    assert empty.status_code == 200 and empty.json()["choices"] == []
    garbage = chat(client, "FAULT: garbage")
    assert garbage.status_code == 200 and "choices" not in garbage.json()


def test_timeout_fault(fm: FakeModel, client: httpx.Client) -> None:
    with pytest.raises(httpx.ReadTimeout):
        chat(client, "FAULT: timeout", timeout=0.3)
    openai = pytest.importorskip("openai")
    messages = [{"role": "user", "content": "FAULT: timeout"}]
    with pytest.raises(openai.APITimeoutError):
        sdk(fm, timeout=0.3).chat.completions.create(model="m", messages=messages)
    deadline = time.monotonic() + 5
    while fm.stats()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.02)  # the server notices the client left, then cancels
    assert fm.stats()["in_flight"] == 0


def test_fault_times_counts_per_prompt(fm: FakeModel, client: httpx.Client) -> None:
    prompt = "FAULT: 500x2\nSAY: finally"
    codes = [chat(client, prompt).status_code for _ in range(3)]
    assert codes == [500, 500, 200]
    assert content(chat(client, prompt)) == "finally"
    assert chat(client, prompt + " ").status_code == 500  # another prompt, own count
    fm.reset()
    assert chat(client, prompt).status_code == 500


def test_unknown_fault_is_a_bad_request(client: httpx.Client) -> None:
    response = chat(client, "FAULT: teapot")
    assert response.status_code == 400
    assert "unknown FAULT" in response.json()["error"]["message"]


def test_generation_parameters_are_recorded(fm: FakeModel) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi"},
    ]
    params = {"temperature": 0.0, "seed": 7, "max_tokens": 16, "stop": ["\n\n"]}
    sdk(fm).chat.completions.create(model="m", messages=messages, **params)
    (seen,) = fm.requests()
    assert seen["path"] == "/v1/chat/completions"
    assert seen["authorization"] is True
    assert seen["body"]["messages"] == messages
    assert {k: seen["body"][k] for k in params} == params
    assert "sk-test" not in json.dumps(seen)


def test_requests_in_order_and_record_switch(
    fm: FakeModel, client: httpx.Client
) -> None:
    chat(client, "one")
    client.post("/completions", json={"model": "m", "prompt": "two"})
    fm.control(record=False)
    chat(client, "three")
    seen = fm.requests()
    assert [r["path"] for r in seen] == ["/v1/chat/completions", "/v1/completions"]
    assert [r["authorization"] for r in seen] == [False, False]
    assert seen[1]["body"]["prompt"] == "two"
    assert fm.stats()["total"] == 3


def test_concurrency_is_counted(fm: FakeModel, client: httpx.Client) -> None:
    # 1 s per request leaves every thread time to get its request in, even on a
    # loaded CI machine; serially the 20 requests would take 20 s.
    fm.control(latency_ms=1000)
    started = time.monotonic()
    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda i: chat(client, f"q{i}").status_code, range(20)))
    assert codes == [200] * 20
    assert time.monotonic() - started < 10.0  # concurrent, not 20 x 1 s
    stats = fm.stats()
    assert stats == {
        "total": 20,
        "in_flight": 0,
        "max_in_flight": 20,
        "by_status": {"200": 20},
    }


def test_reset_restores_startup_state(fm: FakeModel, client: httpx.Client) -> None:
    fm.control(latency_ms=1000)
    with pytest.raises(httpx.ReadTimeout):
        chat(client, "slow", timeout=0.2)
    fm.reset()
    assert fm.requests() == []
    started = time.monotonic()
    assert content(chat(client, "fast")) == "The answer is 42."
    assert time.monotonic() - started < 0.5
    assert fm.stats()["by_status"] == {"200": 1}


def test_unknown_control_setting_is_refused(fm: FakeModel) -> None:
    with pytest.raises(httpx.HTTPStatusError):
        fm.control(latency=5)


def _gsm8k_rows(path: Path) -> list[dict[str, str]]:
    rows = [
        {"question": "Tom has 3 apples and buys 4 more. How many apples now?"},
        {"question": "A box holds 12 eggs. How many eggs are in 3 boxes?"},
        {"question": "Short one?"},
    ]
    for row, gold in zip(rows, ["7", "36", "1,000"], strict=True):
        row["answer"] = f"Some reasoning.\n#### {gold}"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def test_gsm8k_lookup_in_prompts(tmp_path: Path) -> None:
    rows = _gsm8k_rows(tmp_path / "gsm8k.jsonl")
    answers = Gsm8kAnswers(tmp_path / "gsm8k.jsonl", accuracy=1.0)
    q1, q2, short = (r["question"] for r in rows)
    fewshot = f"Question: {q1}\nAnswer: 7\n\nQuestion: {q2}\nAnswer:"
    assert answers.reply(fewshot).endswith("The answer is 36.")  # the last one
    assert answers.reply(f"Solve.\n{q1}\nThink.").endswith("The answer is 7.")
    assert answers.reply(f"Q: {short}").endswith("The answer is 1000.")
    assert answers.reply("An unknown question?") is None
    wrong = Gsm8kAnswers(tmp_path / "gsm8k.jsonl", accuracy=0.0)
    assert wrong.reply(q1).endswith("The answer is 8.")


@needs_gsm8k
@pytest.mark.parametrize("accuracy", [1.0, 0.0])
def test_gsm8k_answers_served(accuracy: float) -> None:
    rows = [json.loads(line) for line in GSM8K_TEST.read_text().splitlines()[:5]]
    with FakeModel(gsm8k_answers=str(GSM8K_TEST), accuracy=accuracy) as fake:
        openai_client = sdk(fake)
        for row in rows:
            gold = int(row["answer"].rsplit("####", 1)[1].replace(",", ""))
            prompt = f"Solve the problem.\n\nQuestion: {row['question']}\nAnswer:"
            messages = [{"role": "user", "content": prompt}]
            reply = openai_client.chat.completions.create(model="m", messages=messages)
            said = re.search(r"answer is (-?\d+)\.$", reply.choices[0].message.content)
            assert said is not None
            assert int(said.group(1)) == (gold if accuracy == 1.0 else gold + 1)


def test_startup_failure_shows_stderr(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="FileNotFoundError"):
        FakeModel(gsm8k_answers=str(tmp_path / "missing.jsonl"))


def test_command_line_ready_line_and_clean_sigterm() -> None:
    command = [sys.executable, "-m", "pytest_nel.testing.fake_model", "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert re.fullmatch(r"READY http://127\.0\.0\.1:\d+\n", line)
        url = line.split()[1]
        assert httpx.get(url + "/health", trust_env=False).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout.read() == ""
