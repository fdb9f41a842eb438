import { assertEquals, assertMatch, assertRejects, assertThrows } from "@std/assert";
import { serveSelfSigned } from "../tests/helpers/self_signed.ts";
import {
  call,
  CliError,
  EXIT,
  exitCodeOf,
  failed,
  progressLine,
  progressWriter,
  ttlSeconds,
} from "./kv_client.ts";

function fakeOut(terminal: boolean) {
  const chunks: string[] = [];
  const dec = new TextDecoder();
  return {
    chunks,
    isTerminal: () => terminal,
    writeSync(b: Uint8Array) {
      chunks.push(dec.decode(b));
      return b.length;
    },
  };
}

Deno.test("progressWriter.done() on a terminal draws the bar at 100 % and ends its line", () => {
  const out = fakeOut(true);
  const bar = progressWriter(out);
  bar.update({ phase: "copying", movedKeys: 3, totalKeys: 10 });
  bar.done();
  bar.end(); // a second close writes nothing
  const text = out.chunks.join("");
  const lines = text.split("\r\x1b[2K").filter((l) => l !== "");
  assertEquals(lines.at(-1), `[${"#".repeat(30)}] 100% 3/~10 keys, done\n`);
  assertEquals(text.endsWith("\n"), true);
  assertEquals(text.split("\n").length, 2, "one newline, after the last redraw");
});

Deno.test("progressWriter.done() off a terminal prints the final line; with nothing shown, nothing", () => {
  const out = fakeOut(false);
  const bar = progressWriter(out);
  bar.done();
  assertEquals(out.chunks, []);
  bar.update({ phase: "cleanup", movedKeys: 4, totalKeys: 4 });
  bar.done();
  assertEquals(out.chunks, [
    `[${"#".repeat(30)}] 100% 4/~4 keys, cleanup\n`,
    `[${"#".repeat(30)}] 100% 4/~4 keys, done\n`,
  ]);
});

Deno.test("ttlSeconds() reads 30, 30s, 5m, 2h, 1d and refuses the rest as a usage error", () => {
  assertEquals([ttlSeconds("30"), ttlSeconds("30s"), ttlSeconds("5m")], [30, 30, 300]);
  assertEquals([ttlSeconds("2h"), ttlSeconds("1d")], [7200, 86_400]);
  assertEquals(ttlSeconds("365d"), 31_536_000);
  // Past a year: refused here as the proxy would (400), before anything is sent.
  for (
    const bad of [
      "0",
      "0s",
      "-1",
      "1.5s",
      "5w",
      "",
      "s",
      "366d",
      "31536001",
      "9000h",
      "99999999999",
    ]
  ) {
    const err = assertThrows(() => ttlSeconds(bad), CliError);
    assertEquals(err.code, EXIT.usage, bad);
  }
});

Deno.test("call() to an https proxy it does not trust, or over http, says what to do", async () => {
  // QA: kv said only "invalid peer certificate: UnknownIssuer" or "invalid HTTP version
  // parsed"; the cure (DENO_CERT, an https:// --url) was in docs/security.md alone.
  await using server = await serveSelfSigned(() => new Response("{}"));
  if (server === undefined) return; // no openssl here
  for (
    const [url, hint] of [
      [`https://127.0.0.1:${server.port}`, /UnknownIssuer.*DENO_CERT=<CA file> deno task kv/],
      [`http://127.0.0.1:${server.port}`, /invalid HTTP version.*give --url https:/],
    ] as const
  ) {
    const target = { url, timeoutMs: 5_000 };
    const err = await assertRejects(() => call(target, "/kv/k"), CliError);
    assertEquals(err.code, EXIT.unavailable);
    assertMatch(err.message, hint);
  }
});

Deno.test("progressLine never says 100 % while copying, and names an estimate that was passed as one", () => {
  const bar = (movedKeys: number, phase = "copying") =>
    progressLine({ phase, movedKeys, totalKeys: 285 }, 10).replace(/^\[[#-]+\] /, "");
  assertEquals(bar(100), "35% 100/~285 keys, copying");
  assertEquals(bar(284), "99% 284/~285 keys, copying");
  assertEquals(bar(368), "99% 368 keys (~285 estimated), copying");
  assertEquals(bar(368, "cleanup"), "100% 368 keys (~285 estimated), cleanup");
  assertEquals(
    progressLine({ phase: "copying", movedKeys: 5, totalKeys: null }, 10),
    "[----------] 0% 5/? keys, copying",
  );
});

Deno.test("exitCodeOf() gives 1 only to a 404 not_found; another 404 is a usage error (a wrong --url)", () => {
  assertEquals(exitCodeOf(404, "not_found"), EXIT.notFound);
  assertEquals(exitCodeOf(404, "no_route"), EXIT.usage);
  assertEquals(exitCodeOf(404), EXIT.usage); // no ringkv error body: a server in front
  assertEquals([exitCodeOf(200), exitCodeOf(405, "method_not_allowed")], [EXIT.ok, EXIT.refused]);
});

Deno.test("failed() of a 404 no_route or a 404 page of another server exits 2 and says the --url path looks wrong", async () => {
  const noRoute = Response.json(
    { error: { code: "no_route", message: "No route for GET /ringkv/kv/a" } },
    { status: 404 },
  );
  const page = new Response("<h1>Not Found</h1>", { status: 404 });
  for (const res of [noRoute, page]) {
    const err = await assertRejects(() => failed(res, 'Cannot get "a"'), CliError);
    assertEquals(err.code, EXIT.usage);
    assertMatch(err.message, /^Cannot get "a": 404 .* \(no such route: the path of --url /);
  }
  const absent = Response.json(
    { error: { code: "not_found", message: 'Key "a" does not exist' } },
    { status: 404 },
  );
  const err = await assertRejects(() => failed(absent, 'Cannot get "a"'), CliError);
  assertEquals([err.code, err.message], [
    EXIT.notFound,
    'Cannot get "a": 404 Key "a" does not exist',
  ]);
});
