import { assertEquals } from "@std/assert";
import { resolve } from "./path.ts";

Deno.test("resolve() makes a path absolute against the working directory, . and .. worked out", () => {
  const cwd = () => "/home/ada/ringkv";
  assertEquals(resolve("./data/n1", cwd), "/home/ada/ringkv/data/n1");
  assertEquals(resolve("../other/data", cwd), "/home/ada/other/data");
  assertEquals(resolve("/srv//ringkv/./n1/", cwd), "/srv/ringkv/n1");
  assertEquals(resolve(".", cwd), "/home/ada/ringkv");
});
