import { assertEquals } from "@std/assert";
import { isAllAccessPath, needsAllAccess } from "./all_access_paths.ts";

Deno.test("isAllAccessPath() is true under /dev, /proc and /sys, after . and .. are taken out", () => {
  for (const path of ["/dev/shm/x", "/proc/1", "/sys", "//dev//shm", "/tmp/../dev/shm/a"]) {
    assertEquals(isAllAccessPath(path), true, path);
  }
  for (const path of ["/devices/x", "/srv/dev/shm", "/dev/../tmp/x", "dev/shm", "./data", "/"]) {
    assertEquals(isAllAccessPath(path), false, path);
  }
});

Deno.test("needsAllAccess() tells Deno's --allow-all refusal from a path missing from a list", () => {
  const all = new Deno.errors.NotCapable('Requires all access to "/dev/shm/x", run again with');
  const read = new Deno.errors.NotCapable('Requires read access to "/dev/shm/x", run again with');
  assertEquals([needsAllAccess(all), needsAllAccess(read), needsAllAccess(new Error())], [
    true,
    false,
    false,
  ]);
});
