import { assertEquals } from "@std/assert";
import { parseNodeUrl } from "./node_url.ts";

Deno.test("parseNodeUrl() keeps the origin of an http(s) URL with at most a trailing slash", () => {
  assertEquals(parseNodeUrl("http://127.0.0.1:7001"), { origin: "http://127.0.0.1:7001" });
  assertEquals(parseNodeUrl("https://Node.Example:7443/"), { origin: "https://node.example:7443" });
  assertEquals(parseNodeUrl("http://[::1]:7001/"), { origin: "http://[::1]:7001" });
});

Deno.test("parseNodeUrl() refuses a path, query, fragment, credentials, other schemes and non-URLs", () => {
  const problems: [string, RegExp][] = [
    ["http://h:7001/kv", /has a path \(\/kv\)/],
    ["http://h:7001//", /has a path/],
    ["http://h:7001/?x=1", /query or fragment/],
    ["http://h:7001?", /query or fragment/],
    ["http://h:7001/#top", /query or fragment/],
    ["http://u:p@h:7001", /user or password/],
    ["http://u@h:7001", /user or password/],
    ["ftp://h:7001", /not http\(s\)/],
    ["h:7001:x", /not a URL|not http/],
    ["not a url", /not a URL$/],
    // QA: `kv add 127.0.0.1:7004` said only "it is not a URL"; `localhost:7004` "not http(s)".
    ["127.0.0.1:7004", /^is not a URL; give http:\/\/127\.0\.0\.1:7004 \(or https:\/\/\)$/],
    ["localhost:7004", /^is not http\(s\); give http:\/\/localhost:7004 \(or https/],
    ["ftp://h:7001", /^is not http\(s\)$/],
  ];
  for (const [text, want] of problems) {
    const got = parseNodeUrl(text);
    const problem = "problem" in got ? got.problem : `accepted as ${got.origin}`;
    assertEquals(want.test(problem), true, `${text}: ${problem}`);
  }
});
