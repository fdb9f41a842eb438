import { assertEquals } from "@std/assert";
import { reachableUrl } from "./children.ts";

Deno.test("reachableUrl: a wildcard bind is called on loopback, any other host as announced", () => {
  assertEquals(reachableUrl("http://0.0.0.0:7001"), "http://127.0.0.1:7001");
  assertEquals(reachableUrl("http://[::]:7001"), "http://[::1]:7001");
  assertEquals(reachableUrl("https://0.0.0.0:8443"), "https://127.0.0.1:8443");
  assertEquals(reachableUrl("http://127.0.0.1:7001"), "http://127.0.0.1:7001");
  assertEquals(reachableUrl("http://10.1.2.3:7001"), "http://10.1.2.3:7001");
  assertEquals(reachableUrl("http://[::1]:7001"), "http://[::1]:7001");
});
