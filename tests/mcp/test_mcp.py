"""`periodic mcp` driven by the official MCP Python SDK over stdio, as a coding agent would.

Each test starts the real binary (`PERIODIC_BIN`) on a fixture folder written by the test:
tools and schemas, a near copy found with both its copies, unrelated code finding nothing,
fragments and other languages, location lookups, patterns, bad arguments answered as tool
errors while the server keeps serving, and (with a real `periodic-edge` on loopback) the
team's other repositories.
"""

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from mcp import Client, StdioServerParameters

PERIODIC = os.environ.get("PERIODIC_BIN", str(Path(__file__).resolve().parents[2] / "target/debug/periodic"))
EDGE = os.environ.get("PERIODIC_EDGE_BIN", str(Path(PERIODIC).parent / "periodic-edge"))

ORDERS = '''def summarize_orders(orders, tax_rate):
    total = 0
    count = 0
    for order in orders:
        if order.status == "paid":
            total += order.amount * (1 + tax_rate)
            count += 1
    average = total / count if count else 0
    return {"total": round(total, 2), "count": count, "average": average}
'''

INVOICES = '''def collect_invoices(invoices, vat):
    acc = 0
    n = 0
    for invoice in invoices:
        if invoice.status == "settled":
            acc += invoice.amount * (1 + vat)
            n += 1
    mean = acc / n if n else 0
    return {"total": round(acc, 3), "count": n, "average": mean}
'''

ROWS = '''def render_rows(rows, width):
    lines = []
    for row in rows:
        if row.visible:
            cells = [str(cell).ljust(width) for cell in row.cells]
            lines.append(" | ".join(cells))
    header = "-" * (width * len(lines))
    return "\\n".join([header] + lines + [header])
'''

RETRY = '''package net;

class Retry {
    static int fetchWithRetry(Client client, String url, int attempts) throws Exception {
        int delay = 100;
        for (int attempt = 0; attempt < attempts; attempt++) {
            try {
                Response response = client.get(url);
                if (response.status() == 200) {
                    return response.length();
                }
            } catch (java.io.IOException error) {
                log("retrying " + url, error);
            }
            Thread.sleep(delay);
            delay = delay * 2;
        }
        throw new Exception("gave up on " + url);
    }
}
'''

# The same function renamed, with one statement more: the near miss an agent writes.
NEAR_COPY = ORDERS.replace("summarize_orders", "total_refunds").replace("order", "refund").replace(
    "count += 1", "count += 1\n            audit_log.append(refund.id)")

# The body of a function without its `def` line, indented as it was, one name changed.
FRAGMENT = '''    total = 0
    count = 0
    for order in orders:
        if order.status == "paid":
            total += order.amount * (1 + tax_rate)
            count += 1
    mean = total / count if count else 0
    return {"total": round(total, 2), "count": count, "average": mean}
'''

# Unrelated code of about the same size.
UNRELATED = '''def parse_headers(raw_lines):
    headers = {}
    for raw in raw_lines:
        if ":" not in raw:
            continue
        name, _, value = raw.partition(":")
        key = name.strip().lower()
        headers.setdefault(key, []).append(value.strip())
    return {key: ", ".join(values) for key, values in headers.items()}
'''

# A Java method without its class, statements changed.
JAVA_METHOD = '''static int downloadWithRetry(Client http, String address, int tries) throws Exception {
    int wait = 100;
    for (int i = 0; i < tries; i++) {
        try {
            Response answer = http.get(address);
            if (answer.status() == 200) {
                return answer.length();
            }
        } catch (java.io.IOException problem) {
            log("retrying " + address, problem);
        }
        Thread.sleep(wait);
        wait = wait * 3;
    }
    throw new Exception("gave up on " + address);
}
'''


def write(root, path, text):
    file = Path(root) / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text)


def fixture():
    root = Path(tempfile.mkdtemp(prefix="periodic-mcp-")).resolve()
    write(root, "src/orders.py", ORDERS)
    write(root, "src/invoices.py", INVOICES)
    write(root, "src/rows.py", ROWS)
    write(root, "net/Retry.java", RETRY)
    return root


def server(root, *extra_args, env=None):
    return StdioServerParameters(command=PERIODIC, args=["mcp", "--root", str(root), *extra_args], env=env)


def paths(result):
    return [found["path"] for found in result.structured_content["matches"]]


class McpTest(unittest.IsolatedAsyncioTestCase):
    def setUp(self):
        self.root = fixture()

    def tearDown(self):
        shutil.rmtree(self.root, ignore_errors=True)

    async def call(self, client, tool, arguments):
        result = await asyncio.wait_for(client.call_tool(tool, arguments), 60)
        self.assertEqual(len(result.content), 1, result)
        return result

    async def ok(self, client, tool, arguments):
        result = await self.call(client, tool, arguments)
        self.assertFalse(result.is_error, result.content[0].text)
        self.assertIsNotNone(result.structured_content)
        return result

    async def test_tools_are_listed_with_input_and_output_schemas(self):
        async with Client(server(self.root)) as client:
            self.assertTrue(client.protocol_version)
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            self.assertEqual(sorted(tools), ["find_similar_at", "find_similar_code", "get_pattern", "list_patterns"])
            code = tools["find_similar_code"]
            self.assertEqual(code.input_schema["required"], ["code"])
            self.assertEqual(set(code.input_schema["properties"]), {"code", "language", "path", "min_similarity", "limit"})
            self.assertEqual(sorted(tools["find_similar_at"].input_schema["required"]), ["line", "path"])
            self.assertEqual(tools["get_pattern"].input_schema["required"], ["id"])
            self.assertNotIn("required", tools["list_patterns"].input_schema)
            for tool in tools.values():
                self.assertEqual(tool.output_schema["type"], "object")
                self.assertIn("index", tool.output_schema["properties"])
                self.assertTrue(tool.description)
            self.assertIn("matches", code.output_schema["properties"])
            self.assertIn("team", code.output_schema["properties"])

    async def test_clients_with_the_initialize_handshake_are_served_too(self):
        async with Client(server(self.root), mode="legacy") as client:
            self.assertRegex(client.protocol_version, r"^20\d\d-\d\d-\d\d$")
            self.assertNotEqual(client.protocol_version, "2026-07-28", "the legacy handshake negotiates an earlier version")
            self.assertEqual(client.server_info.name, "periodic")
            result = await self.ok(client, "find_similar_at", {"path": "src/orders.py", "line": 2})
            self.assertEqual(paths(result), ["src/invoices.py"])

    async def test_a_near_copy_is_found_with_both_its_copies_and_the_closest_text(self):
        async with Client(server(self.root)) as client:
            result = await self.ok(client, "find_similar_code", {"code": NEAR_COPY})
            answer = result.structured_content
            self.assertEqual(answer["language"], "python")
            self.assertTrue(answer["language_guessed"])
            self.assertEqual(sorted(paths(result)), ["src/invoices.py", "src/orders.py"])
            for found in answer["matches"]:
                self.assertEqual(found["kind"], "T3")
                self.assertGreaterEqual(found["similarity"], 0.7)
                self.assertEqual(found["unit"], "function")
                self.assertEqual((found["start_line"], found["end_line"]), (1, 9))
                self.assertEqual((found["snippet_start_line"], found["snippet_end_line"]), (1, 10))
                self.assertTrue(found["pattern_id"].startswith("P-"))
            names = {found["name"] for found in answer["matches"]}
            self.assertEqual(names, {"summarize_orders", "collect_invoices"})
            closest = answer["matches"][0]
            self.assertIn(closest["name"], closest["code"])
            self.assertNotIn("code", answer["matches"][1], "only the closest copy carries its text")
            text = result.content[0].text
            self.assertIn("2 similar places", text)
            self.assertIn("src/orders.py:1-9 summarize_orders", text)
            self.assertNotIn("\x1b[", text, "no ANSI colours")
            self.assertFalse(answer["index"]["indexing"])
            self.assertEqual(answer["index"]["files"], 4)

    async def test_unrelated_code_of_similar_size_finds_nothing(self):
        async with Client(server(self.root)) as client:
            result = await self.ok(client, "find_similar_code", {"code": UNRELATED, "language": "python"})
            self.assertEqual(result.structured_content["matches"], [])
            self.assertFalse(result.structured_content["language_guessed"])
            self.assertIn("No similar code found", result.content[0].text)

    async def test_fragments_other_languages_paths_and_thresholds(self):
        async with Client(server(self.root)) as client:
            fragment = await self.ok(client, "find_similar_code", {"code": FRAGMENT})
            self.assertEqual(sorted(paths(fragment)), ["src/invoices.py", "src/orders.py"])
            self.assertEqual(fragment.structured_content["matches"][0]["snippet_start_line"], 1)
            self.assertEqual(fragment.structured_content["matches"][0]["snippet_end_line"], 8)
            small = await self.ok(client, "find_similar_code", {"code": "total = 0\nfor order in orders:\n    total += order.amount\n"})
            self.assertEqual(small.structured_content["matches"], [])
            self.assertEqual(small.structured_content["snippet_units"], 0)
            self.assertIn("below the size", small.content[0].text)
            java = await self.ok(client, "find_similar_code", {"code": JAVA_METHOD, "language": "java"})
            self.assertEqual(paths(java), ["net/Retry.java"])
            self.assertEqual(java.structured_content["matches"][0]["name"], "fetchWithRetry")
            guessed = await self.ok(client, "find_similar_code", {"code": JAVA_METHOD})
            self.assertEqual(guessed.structured_content["language"], "java")
            # The file the code goes to names the language and is left out of the answer.
            exact = await self.ok(client, "find_similar_code", {"code": ORDERS, "path": "src/orders.py"})
            self.assertEqual(paths(exact), ["src/invoices.py"])
            self.assertEqual(exact.structured_content["matches"][0]["kind"], "T2")
            absolute = await self.ok(client, "find_similar_code", {"code": ORDERS, "path": str(self.root / "src/orders.py")})
            self.assertEqual(paths(absolute), ["src/invoices.py"])
            strict = await self.ok(client, "find_similar_code", {"code": NEAR_COPY, "min_similarity": 0.99})
            self.assertEqual(strict.structured_content["matches"], [])
            one = await self.ok(client, "find_similar_code", {"code": NEAR_COPY, "limit": 1})
            self.assertEqual(len(one.structured_content["matches"]), 1)

    async def test_location_lookups_answer_for_the_unit_at_a_line(self):
        async with Client(server(self.root)) as client:
            result = await self.ok(client, "find_similar_at", {"path": "src/orders.py", "line": 4})
            answer = result.structured_content
            self.assertEqual(answer["subject"]["name"], "summarize_orders")
            self.assertEqual(paths(result), ["src/invoices.py"])
            self.assertEqual(answer["matches"][0]["kind"], "T2")
            self.assertIn("collect_invoices", answer["matches"][0]["code"])
            by_absolute = await self.ok(client, "find_similar_at", {"path": str(self.root / "src/orders.py"), "line": 4})
            self.assertEqual(by_absolute.structured_content["matches"], answer["matches"])
            alone = await self.ok(client, "find_similar_at", {"path": "src/rows.py", "line": 2})
            self.assertEqual(alone.structured_content["subject"]["name"], "render_rows")
            self.assertEqual(alone.structured_content["matches"], [])

    async def test_patterns_are_listed_filtered_and_shown(self):
        async with Client(server(self.root)) as client:
            listed = await self.ok(client, "list_patterns", {})
            patterns = listed.structured_content["patterns"]
            self.assertEqual(listed.structured_content["total"], 1)
            pattern = patterns[0]
            self.assertEqual(pattern["member_count"], 2)
            self.assertEqual(pattern["languages"], ["python"])
            self.assertIn(pattern["representative"]["path"], ["src/orders.py", "src/invoices.py"])
            under = await self.ok(client, "list_patterns", {"path": "src/orders.py"})
            self.assertEqual(under.structured_content["patterns"][0]["representative"]["path"], "src/orders.py")
            for empty in ({"language": "rust"}, {"path": "net"}):
                result = await self.ok(client, "list_patterns", empty)
                self.assertEqual(result.structured_content["patterns"], [], empty)
            shown = await self.ok(client, "get_pattern", {"id": pattern["id"]})
            detail = shown.structured_content
            self.assertEqual(detail["id"], pattern["id"])
            self.assertEqual(sorted(member["path"] for member in detail["members"]), ["src/invoices.py", "src/orders.py"])
            for member in detail["members"]:
                self.assertEqual((member["kind"], member["similarity"]), ("T2", 1.0))
            self.assertIn(pattern["id"], shown.content[0].text)

    async def test_user_names_and_notes_are_shown(self):
        async with Client(server(self.root)) as client:
            pattern_id = (await self.ok(client, "list_patterns", {})).structured_content["patterns"][0]["id"]
        write(self.root, ".periodic.toml", f'[patterns."{pattern_id}"]\nname = "order-totals"\nnote = "Use billing.totals instead."\n')
        async with Client(server(self.root)) as client:
            detail = (await self.ok(client, "get_pattern", {"id": pattern_id})).structured_content
            self.assertEqual(detail["name"], "order-totals")
            self.assertEqual(detail["user_name"], "order-totals")
            self.assertEqual(detail["note"], "Use billing.totals instead.")

    async def test_bad_arguments_are_tool_errors_and_the_server_keeps_serving(self):
        outside = Path(tempfile.mkdtemp(prefix="periodic-outside-")).resolve()
        write(outside, "a.py", ORDERS)
        cases = [
            ("find_similar_code", {}, "missing field `code`"),
            ("find_similar_code", {"code": "   "}, "`code` is empty"),
            ("find_similar_code", {"code": "x = 1\n" * 20000}, "the limit is"),
            ("find_similar_code", {"code": ORDERS, "language": "cobol"}, "unknown language `cobol`"),
            ("find_similar_code", {"code": ORDERS, "min_similarity": 2}, "`min_similarity` must be in (0, 1]"),
            ("find_similar_code", {"code": ORDERS, "limit": 0}, "`limit` must be between 1 and 100"),
            ("find_similar_code", {"code": ORDERS, "path": str(outside / "a.py")}, "outside the root"),
            ("find_similar_code", {"code": ORDERS, "path": "notes.txt"}, "cannot tell the language"),
            ("find_similar_code", {"code": ORDERS, "colour": "red"}, "unknown field `colour`"),
            ("find_similar_at", {"path": "../" + outside.name + "/a.py", "line": 1}, "outside the root"),
            ("find_similar_at", {"path": "src/missing.py", "line": 1}, "no such file"),
            ("find_similar_at", {"path": "src/orders.py", "line": 500}, "past the end of `src/orders.py` (9 lines)"),
            ("find_similar_at", {"path": "src/orders.py", "line": 0}, "1-based"),
            ("find_similar_at", {"path": "src/orders.py", "line": "four"}, "invalid arguments for find_similar_at"),
            ("get_pattern", {"id": "P-00000000"}, "no pattern `P-00000000`"),
            ("list_patterns", {"limit": 100000}, "`limit` must be between 1 and 500"),
            ("no_such_tool", {}, "unknown tool `no_such_tool`"),
        ]
        try:
            async with Client(server(self.root)) as client:
                for tool, arguments, message in cases:
                    result = await self.call(client, tool, arguments)
                    self.assertTrue(result.is_error, (tool, arguments))
                    self.assertIn(message, result.content[0].text, (tool, arguments))
                # Still serving, with the same answers.
                result = await self.ok(client, "find_similar_code", {"code": NEAR_COPY})
                self.assertEqual(sorted(paths(result)), ["src/invoices.py", "src/orders.py"])
        finally:
            shutil.rmtree(outside, ignore_errors=True)

    async def test_code_written_after_the_start_is_found_and_the_index_is_kept(self):
        async with Client(server(self.root)) as client:
            first = await self.ok(client, "find_similar_code", {"code": UNRELATED})
            self.assertEqual(first.structured_content["matches"], [])
            write(self.root, "src/headers.py", UNRELATED.replace("parse_headers", "read_headers"))
            # A question after the refresh interval starts a refresh; answers follow it.
            deadline = time.monotonic() + 60
            found = []
            while time.monotonic() < deadline and not found:
                await asyncio.sleep(1)
                found = paths(await self.ok(client, "find_similar_code", {"code": UNRELATED}))
            self.assertEqual(found, ["src/headers.py"])
        self.assertTrue((self.root / ".periodic/index.db").is_file(), "the index is written for the next start")


def run(*args, **kwargs):
    completed = subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)
    if completed.returncode != 0:
        raise AssertionError(f"{args}: {completed.stderr}")
    return completed.stdout


class TeamTest(unittest.IsolatedAsyncioTestCase):
    """A real `periodic-edge` on loopback: `billing` is pushed with `periodic scan --edge`,
    and the MCP server of `ledger`, configured with `[edge]`, answers billing's copy."""

    def setUp(self):
        self.base = Path(tempfile.mkdtemp(prefix="periodic-mcp-team-")).resolve()
        tokens = self.base / "tokens.json"
        token = run(EDGE, "token", "create", "--tokens", str(tokens), "--tenant", "team", "--role", "write").strip()
        (self.base / "token.txt").write_text(token + "\n")
        addr = self.base / "edge.addr"
        self.edge = subprocess.Popen(
            [EDGE, "--listen", "127.0.0.1:0", "--shards", "2", "--data", str(self.base / "edge-data"), "--tokens", str(tokens), "--addr-file", str(addr)],
            stdout=subprocess.DEVNULL, env={**os.environ, "PERIODIC_EDGE_LOG": "warn"})
        deadline = time.monotonic() + 60
        while not (addr.is_file() and addr.read_text().strip()):
            self.assertIsNone(self.edge.poll(), "periodic-edge exited")
            self.assertLess(time.monotonic(), deadline, "periodic-edge did not listen")
            time.sleep(0.05)
        self.url = "http://" + addr.read_text().strip()
        write(self.base / "billing", "src/money.py", ORDERS)
        run(PERIODIC, "scan", str(self.base / "billing"), "--quiet", "--edge", self.url, "--edge-token-file", str(self.base / "token.txt"), "--edge-repo", "billing")
        self.ledger = self.base / "ledger"
        write(self.ledger, "lib/rows.py", ROWS)
        write(self.ledger, ".periodic.toml", f'[edge]\nurl = "{self.url}"\nshare = "locations"\ntoken_file = "../token.txt"\nrepo = "ledger"\n')

    def tearDown(self):
        self.edge.kill()
        self.edge.wait()
        shutil.rmtree(self.base, ignore_errors=True)

    async def test_the_teams_other_repositories_are_answered_too(self):
        env = {key: value for key, value in os.environ.items() if key != "PERIODIC_EDGE_TOKEN"}
        async with Client(server(self.ledger, env=env)) as client:
            deadline = time.monotonic() + 60
            team = []
            while time.monotonic() < deadline and not team:
                result = await client.call_tool("find_similar_code", {"code": NEAR_COPY, "language": "python"})
                self.assertFalse(result.is_error, result.content[0].text)
                team = result.structured_content["team"]
                if not team:
                    await asyncio.sleep(0.5)
            self.assertEqual(result.structured_content["matches"], [], "nothing local in ledger")
            self.assertEqual(team[0]["repo"], "billing")
            self.assertEqual(team[0]["path"], "src/money.py")
            self.assertEqual(team[0]["name"], "summarize_orders")
            self.assertGreaterEqual(team[0]["similarity"], 0.7)
            self.assertIn("repo billing: src/money.py:1-9 summarize_orders", result.content[0].text)


if __name__ == "__main__":
    unittest.main()
