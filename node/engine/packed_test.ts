import { assertEquals } from "@std/assert";
import { formatVersion } from "../../shared/version.ts";
import { Packer, type Stored } from "./packed.ts";

Deno.test("Packer.unpack() and versionOf() give back the version packed, as formatVersion spells it", () => {
  const packer = new Packer();
  const walls = [0, 1, 255, 0x18bcfe56800, Date.now(), 2 ** 48 - 1];
  const counters = [0, 1, 0xff, 0x100, 0xffff];
  for (const wall of walls) {
    for (const counter of counters) {
      const version = formatVersion(wall, counter, "n1_x");
      const entry: Stored = {
        kind: "text",
        data: "v",
        hash: 7,
        contentType: "text/plain",
        version,
      };
      const record = packer.pack(entry);
      assertEquals(packer.unpack(record), entry);
      assertEquals(packer.versionOf(record), version);
    }
  }
});
