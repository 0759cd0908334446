import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError } from './load.js';
import { loadRulesFile } from './rules-file.js';

describe('rules files for warden policy apply', () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-rules-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  it('reads `rules:` or a bare list, keeps the input as written and parses durations once', () => {
    const text =
      '- name: hold-deletes\n  when: { sql: { statements: [delete] } }\n  effect: review\n  review: { approvers: [dba], hold: 2m }\n';
    const bare = loadRulesFile(write('bare.yaml', text));
    const wrapped = loadRulesFile(write('wrapped.yaml', `rules:\n${text.replace(/^/gm, '  ')}`));
    assert.deepEqual(bare, wrapped);
    assert.equal((bare.input[0] as { review: { hold: string } }).review.hold, '2m');
    const rule = bare.rules[0];
    assert.ok(rule?.effect === 'review');
    assert.equal(rule.review.hold, 120_000);
  });

  it('holds a reviewed command for five minutes when the rule names no hold', () => {
    const { rules } = loadRulesFile(
      write('default.yaml', '- { name: r, effect: review, review: { approvers: [dba] } }\n'),
    );
    assert.ok(rules[0]?.effect === 'review');
    assert.equal(rules[0].review.hold, 300_000);
  });

  it('names file:line, key path and the accepted values for every mistake', () => {
    const file = write(
      'bad.yaml',
      'rules:\n  - name: fine\n    effect: allow\n  - name: dup\n    effect: allow\n  - name: dup\n    effect: mask\n    mask: { style: blur }\n  - name: odd\n    effect: explode\n',
    );
    assert.throws(
      () => loadRulesFile(file),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(
          err.message,
          /bad\.yaml:8:\d+: rules\[2\]\.mask\.style: expected one of "redact", "keep-last-4", "tokenize", an object/,
        );
        assert.match(
          err.message,
          /bad\.yaml:10:\d+: rules\[3\]\.effect: expected one of "allow", "deny", "review"/,
        );
        return true;
      },
    );
    assert.throws(
      () =>
        loadRulesFile(write('dup.yaml', '- { name: dup, effect: allow }\n- { name: dup, effect: deny }\n')),
      /dup\.yaml:2:\d+: \[1\]\.name: duplicate rule name "dup"/,
    );
    assert.throws(() => loadRulesFile(write('syntax.yaml', 'rules: [\n')), /syntax\.yaml:2:1: /);
    assert.throws(() => loadRulesFile(write('other.yaml', 'policy: []\n')), /unknown key "policy"/);
  });
});
