import assert from "node:assert/strict";
import { compareVersions, formatTimestamp, isVersion, parseTimestamp } from "./_version.ts";

Deno.test("compareVersions() follows SemVer 2.0.0 precedence", () => {
  const ordered = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.2.0",
    "1.10.0",
    "2.0.0",
    "10.0.0",
    "99999999999999999999.0.0",
  ];
  for (let i = 0; i < ordered.length; i++) {
    for (let j = 0; j < ordered.length; j++) {
      assert.equal(
        compareVersions(ordered[i], ordered[j]),
        Math.sign(i - j),
        `${ordered[i]} vs ${ordered[j]}`,
      );
    }
  }
});

Deno.test("isVersion() refuses build metadata, leading zeros and partial versions", () => {
  for (
    const bad of ["1.0", "1.0.0+build", "01.0.0", "1.0.0-01", "v1.0.0", "1.0.0-", "", " 1.0.0"]
  ) {
    assert.equal(isVersion(bad), false, bad);
  }
  for (const good of ["0.0.0", "1.2.3", "1.2.3-rc.1", "1.2.3-0a"]) {
    assert.equal(isVersion(good), true);
  }
});

Deno.test("parseTimestamp() accepts only real instants in the one written form", () => {
  assert.equal(parseTimestamp("2026-01-01T00:00:00Z"), Date.UTC(2026, 0, 1));
  for (
    const bad of [
      "2026-02-30T00:00:00Z",
      "2026-01-01T00:00:00.000Z",
      "2026-01-01 00:00:00Z",
      "2026-01-01T00:00:00+00:00",
      "2026-01-01T24:00:00Z",
    ]
  ) {
    assert.equal(parseTimestamp(bad), null, bad);
  }
  assert.equal(formatTimestamp(Date.UTC(2026, 0, 1) + 999), "2026-01-01T00:00:00Z");
});
