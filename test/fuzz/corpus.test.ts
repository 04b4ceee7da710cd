import assert from 'node:assert/strict';
import { test } from 'node:test';
import { corpus, crashOf, TARGETS } from '../../scripts/fuzz/targets.ts';

// Every committed fuzz input (seeds and the crashes found and fixed) still parses or fails with the parser's
// typed error, in bounded time: a fixed crash or slow input that comes back fails here, without running the
// fuzzer. An input takes milliseconds; the bound is the fuzzer's default, loose for a loaded machine, while
// the slow inputs fixed so far took 19 s and more.
const HANG_MS = 1000;

for (const target of TARGETS) {
  test(`fuzz corpus: ${target.name}`, () => {
    const inputs = corpus(target.name);
    assert.ok(inputs.length > 0, `testdata/fuzz/${target.name}/ is empty`);
    for (const { file, bytes } of inputs) {
      const crash = crashOf(target, bytes, HANG_MS);
      assert.equal(crash, null, `testdata/fuzz/${target.name}/${file}: ${String(crash)}`);
    }
  });
}

test('a crash is told apart from a typed parse error', () => {
  const amf0 = TARGETS.find((t) => t.name === 'amf0')!;
  assert.equal(crashOf(amf0, Uint8Array.of(0x02, 0x00)), null, 'truncated AMF0 is an Amf0Error, not a crash');
  const broken = {
    ...amf0,
    run: () => {
      throw new TypeError('a bug, not a parse error');
    },
  };
  assert.ok(crashOf(broken, Uint8Array.of()) instanceof TypeError);
  const slow = {
    ...amf0,
    run: () => {
      const until = performance.now() + 20;
      while (performance.now() < until);
    },
  };
  assert.match(String(crashOf(slow, Uint8Array.of(), 10)), /took \d+ ms \(bound 10 ms\)/);
});
