import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AsciicastError,
  type AsciicastEvent,
  AsciicastWriter,
  formatAsciicast,
  parseAsciicast,
} from './asciicast.js';

/** A recording as asciinema writes one: colour, a carriage return, a marker, a resize. */
const FIXTURE = [
  '{"version": 2, "width": 80, "height": 24, "timestamp": 1504467315, "title": "Demo", "env": {"TERM": "xterm-256color", "SHELL": "/bin/zsh"}}',
  '[0.248848, "o", "\\u001b[1;31mHello \\u001b[32mWorld!\\u001b[0m\\n"]',
  '[1.001376, "o", "That was ok\\rThis is better."]',
  '[1.5, "m", ""]',
  '[4.05, "r", "100x30"]',
  '[6.541828, "o", "Bye!"]',
  '',
].join('\n');

const events = (lines: string[]): AsciicastEvent[] => lines.map((l) => JSON.parse(l));
const bytes = (...b: number[]) => Buffer.from(b);

describe('asciicast v2 parser', () => {
  it('reads a well-formed recording: header fields and every event in order', () => {
    const cast = parseAsciicast(FIXTURE);
    assert.deepEqual(cast.header, {
      version: 2,
      width: 80,
      height: 24,
      timestamp: 1504467315,
      title: 'Demo',
      env: { TERM: 'xterm-256color', SHELL: '/bin/zsh' },
    });
    assert.deepEqual(
      cast.events.map((e) => e[1]),
      ['o', 'o', 'm', 'r', 'o'],
    );
    assert.equal(cast.events[0]![2], '\u001b[1;31mHello \u001b[32mWorld!\u001b[0m\n');
  });

  it('reads back exactly what formatAsciicast wrote', () => {
    const cast = parseAsciicast(FIXTURE);
    assert.deepEqual(parseAsciicast(formatAsciicast(cast)), cast);
    assert.deepEqual(parseAsciicast('{"version":2,"width":1,"height":1}'), {
      header: { version: 2, width: 1, height: 1 },
      events: [],
    });
  });

  const header = '{"version":2,"width":80,"height":24}';
  const malformed: Array<[string, string, number, RegExp]> = [
    ['empty text', '', 1, /empty/],
    ['a header that is not JSON', '{"version":2,', 1, /not JSON/],
    ['a header that is an array', '[2, 80, 24]', 1, /header must be a JSON object/],
    ['version 1', '{"version":1,"width":80,"height":24}', 1, /version must be 2/],
    ['a zero width', '{"version":2,"width":0,"height":24}', 1, /width must be a positive integer/],
    ['a fractional timestamp', '{"version":2,"width":80,"height":24,"timestamp":1.5}', 1, /timestamp/],
    ['env with a number', '{"version":2,"width":80,"height":24,"env":{"COLUMNS":80}}', 1, /env/],
    ['an event that is an object', `${header}\n[0.1,"o","a"]\n{"t":1}`, 3, /\[time, code, data\]/],
    ['an event of two elements', `${header}\n[0.1,"o"]`, 2, /\[time, code, data\]/],
    ['an unknown code', `${header}\n[0.1,"x","a"]`, 2, /code must be one of o, i, r, m, not "x"/],
    ['a negative time', `${header}\n[-1,"o","a"]`, 2, /time must be/],
    ['a time as a string', `${header}\n["0.1","o","a"]`, 2, /time must be/],
    ['data that is not a string', `${header}\n[0.1,"o",42]`, 2, /data must be a string/],
    ['a resize without COLSxROWS', `${header}\n[0.1,"r","wide"]`, 2, /COLSxROWS/],
    ['time going backwards', `${header}\n[2,"o","a"]\n[1,"o","b"]`, 3, /before the previous event/],
    ['a blank line among events', `${header}\n[0.1,"o","a"]\n\n[0.2,"o","b"]`, 3, /not JSON/],
  ];
  for (const [what, text, line, message] of malformed) {
    it(`rejects ${what}, naming line ${line}`, () => {
      assert.throws(
        () => parseAsciicast(text),
        (err: unknown) => {
          assert.ok(err instanceof AsciicastError);
          assert.equal(err.line, line);
          assert.match(err.message, new RegExp(`^asciicast line ${line}: `));
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }
});

describe('asciicast writer', () => {
  it('keeps a UTF-8 character split across chunks whole, whichever byte the split falls on', () => {
    const w = new AsciicastWriter();
    // "é" is c3 a9, "✓" is e2 9c 93: each arrives cut in two or three pieces.
    const lines = [
      ...w.output(bytes(0x63, 0x61, 0x66, 0xc3), 0.1),
      ...w.output(bytes(0xa9, 0x20, 0xe2), 0.2),
      ...w.output(bytes(0x9c), 0.3),
      ...w.output(bytes(0x93, 0x0a), 0.4),
    ];
    assert.deepEqual(events(lines), [
      [0.1, 'o', 'caf'],
      [0.2, 'o', 'é '],
      [0.4, 'o', '✓\n'],
    ]);
    assert.ok(!lines.join('').includes('\ufffd'));
  });

  it('ends a character cut off by the end of the session as U+FFFD instead of dropping the bytes', () => {
    const w = new AsciicastWriter();
    assert.deepEqual(w.output(bytes(0x6f, 0x6b, 0xe2, 0x9c), 1), ['[1,"o","ok"]\n']);
    assert.deepEqual(events(w.end(2)), [[2, 'o', '\ufffd']]);
  });

  it('leaves keystrokes out unless asked, since they may be passwords', () => {
    const quiet = new AsciicastWriter();
    assert.deepEqual(quiet.input(Buffer.from('hunter2\r'), 1), []);
    assert.deepEqual(quiet.end(2), []);
    const keys = new AsciicastWriter({ recordInput: true });
    assert.deepEqual(events(keys.input(Buffer.from('ls\r'), 1)), [[1, 'i', 'ls\r']]);
  });

  it('records a resize as COLSxROWS and refuses a size that is not one', () => {
    const w = new AsciicastWriter();
    assert.deepEqual(events(w.resize(132, 43, 0.5)), [[0.5, 'r', '132x43']]);
    assert.throws(() => w.resize(0, 43, 1), RangeError);
    assert.throws(() => w.resize(80.5, 24, 1), RangeError);
  });

  it('writes times in microseconds that never go backwards', () => {
    const w = new AsciicastWriter();
    assert.deepEqual(
      events([...w.output(Buffer.from('a'), 1.23456789), ...w.output(Buffer.from('b'), 1.2)]),
      [
        [1.234568, 'o', 'a'],
        [1.234568, 'o', 'b'],
      ],
    );
  });

  it('splits long output into bounded events without cutting a surrogate pair', () => {
    const w = new AsciicastWriter({ maxEventChars: 4 });
    const text = 'abc😀def😀';
    const out = events(w.output(Buffer.from(text), 1));
    assert.ok(out.every(([, , data]) => data.length <= 4));
    assert.equal(out.map((e) => e[2]).join(''), text);
    assert.ok(out.every(([, , data]) => !data.includes('\ufffd') && Buffer.from(data).toString() === data));
  });

  it('stops at its size bound with one marker saying the recording was truncated', () => {
    const w = new AsciicastWriter({ maxBytes: 100 });
    const lines: string[] = [];
    for (let i = 0; i < 20; i++) lines.push(...w.output(Buffer.from(`line ${i}\n`), i));
    const out = events(lines);
    const last = out.at(-1)!;
    assert.equal(last[1], 'm');
    assert.match(last[2], /^recording truncated: over 100 bytes/);
    assert.equal(out.filter((e) => e[1] === 'm').length, 1);
    assert.ok(w.truncated);
    assert.ok(lines.slice(0, -1).join('').length <= 100);
    assert.deepEqual(w.resize(100, 30, 30), [], 'nothing after the marker');
  });
});
