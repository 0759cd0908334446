// SipHash-2-4 as a tiny WebAssembly function, assembled here from its instructions: WebAssembly has
// 64-bit integers, so a SipRound is 14 instructions instead of the ~40 JavaScript spends on 32-bit
// halves (190 → 80 ns for a 25-byte value). siphash.ts uses it for every input that fits its memory.
import type { SipKey } from './siphash.js';

// Memory layout (one 64 KiB page): the key at 0 (k0, k1 as little-endian words), the result at 16,
// the message from 32.
const KEY_AT = 0;
const RESULT_AT = 16;
const DATA_AT = 32;
/** The longest message the module takes; longer ones go to the JavaScript implementation. */
export const WASM_MAX_INPUT = 65_536 - DATA_AT;

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};

const sleb = (value: bigint): number[] => {
  let v = BigInt.asIntN(64, value);
  const out: number[] = [];
  for (;;) {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    if ((v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
};

// Opcodes (WebAssembly core spec, binary format).
const op = {
  block: 0x02,
  loop: 0x03,
  br: 0x0c,
  brIf: 0x0d,
  end: 0x0b,
  get: 0x20,
  set: 0x21,
  i32Const: 0x41,
  i64Const: 0x42,
  i64Load: 0x29,
  i64Load8U: 0x31,
  i64Store: 0x37,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32And: 0x71,
  i32Shl: 0x74,
  i64Add: 0x7c,
  i64Or: 0x84,
  i64Xor: 0x85,
  i64Shl: 0x86,
  i64Rotl: 0x89,
  i64ExtendI32U: 0xad,
  void: 0x40,
} as const;

// Locals: the parameter (len), three i32 (i, end, j), five i64 (v0..v3, m).
const [len, i, end, j, v0, v1, v2, v3, m] = [0, 1, 2, 3, 4, 5, 6, 7, 8] as const;
const get = (l: number) => [op.get, l];
const set = (l: number) => [op.set, l];
const i32 = (n: number) => [op.i32Const, ...sleb(BigInt(n))];
const i64 = (n: bigint) => [op.i64Const, ...sleb(n)];
const addTo = (a: number, b: number) => [...get(a), ...get(b), op.i64Add, ...set(a)];
const xorTo = (a: number, b: number) => [...get(a), ...get(b), op.i64Xor, ...set(a)];
const rotl = (a: number, r: number) => [...get(a), ...i64(BigInt(r)), op.i64Rotl, ...set(a)];

const sipRound = () => [
  ...addTo(v0, v1),
  ...rotl(v1, 13),
  ...xorTo(v1, v0),
  ...rotl(v0, 32),
  ...addTo(v2, v3),
  ...rotl(v3, 16),
  ...xorTo(v3, v2),
  ...addTo(v0, v3),
  ...rotl(v3, 21),
  ...xorTo(v3, v0),
  ...addTo(v2, v1),
  ...rotl(v1, 17),
  ...xorTo(v1, v2),
  ...rotl(v2, 32),
];
/** v3 ^= m; two SipRounds; v0 ^= m: one message word. */
const compress = () => [...xorTo(v3, m), ...sipRound(), ...sipRound(), ...xorTo(v0, m)];
/** v = k ^ constant, k read from memory at `at`. */
const init = (v: number, at: number, constant: bigint) => [
  ...i32(at),
  op.i64Load,
  3,
  0,
  ...i64(constant),
  op.i64Xor,
  ...set(v),
];

/** sip(len): SipHash-2-4 of memory[DATA_AT, DATA_AT + len) under the key at KEY_AT, stored at RESULT_AT. */
const body = [
  // The constants are "somepseudorandomlygeneratedbytes".
  ...init(v0, KEY_AT, 0x736f6d6570736575n),
  ...init(v1, KEY_AT + 8, 0x646f72616e646f6dn),
  ...init(v2, KEY_AT, 0x6c7967656e657261n),
  ...init(v3, KEY_AT + 8, 0x7465646279746573n),
  ...i32(DATA_AT),
  ...set(i),
  ...i32(DATA_AT),
  ...get(len),
  ...i32(-8),
  op.i32And,
  op.i32Add,
  ...set(end),
  // Every whole 8-byte word.
  op.block,
  op.void,
  op.loop,
  op.void,
  ...get(i),
  ...get(end),
  op.i32GeU,
  op.brIf,
  1,
  ...get(i),
  op.i64Load,
  0,
  0,
  ...set(m),
  ...compress(),
  ...get(i),
  ...i32(8),
  op.i32Add,
  ...set(i),
  op.br,
  0,
  op.end,
  op.end,
  // The last word: the length's low byte on top, the 0-7 remaining bytes below.
  ...get(len),
  op.i64ExtendI32U,
  ...i64(56n),
  op.i64Shl,
  ...set(m),
  ...i32(0),
  ...set(j),
  op.block,
  op.void,
  op.loop,
  op.void,
  ...get(j),
  ...get(len),
  ...i32(7),
  op.i32And,
  op.i32GeU,
  op.brIf,
  1,
  ...get(m),
  ...get(i),
  ...get(j),
  op.i32Add,
  op.i64Load8U,
  0,
  0,
  ...get(j),
  ...i32(3),
  op.i32Shl,
  op.i64ExtendI32U,
  op.i64Shl,
  op.i64Or,
  ...set(m),
  ...get(j),
  ...i32(1),
  op.i32Add,
  ...set(j),
  op.br,
  0,
  op.end,
  op.end,
  ...compress(),
  // Finalisation: v2 ^= 0xff, four SipRounds, v0 ^ v1 ^ v2 ^ v3.
  ...get(v2),
  ...i64(0xffn),
  op.i64Xor,
  ...set(v2),
  ...sipRound(),
  ...sipRound(),
  ...sipRound(),
  ...sipRound(),
  ...i32(RESULT_AT),
  ...get(v0),
  ...get(v1),
  op.i64Xor,
  ...get(v2),
  op.i64Xor,
  ...get(v3),
  op.i64Xor,
  op.i64Store,
  3,
  0,
  op.end,
];

const section = (id: number, content: number[]) => [id, ...uleb(content.length), ...content];
const name = (s: string) => [...uleb(s.length), ...Buffer.from(s, 'ascii')];
const fn = [2, 3, 0x7f, 5, 0x7e, ...body]; // locals: 3 × i32, 5 × i64
const MODULE = Uint8Array.from([
  ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
  ...section(1, [1, 0x60, 1, 0x7f, 0]), // one type: (i32) -> ()
  ...section(3, [1, 0]), // one function of that type
  ...section(5, [1, 0, 1]), // one memory, at least one page
  ...section(7, [2, ...name('memory'), 2, 0, ...name('sip'), 0, 0]),
  ...section(10, [1, ...uleb(fn.length), ...fn]),
]);

/** The part of the WebAssembly API used here (its types come with the DOM library, not in this project). */
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const { Module, Instance } = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;
const instance = new Instance(new Module(MODULE), {});
const memory = instance.exports.memory as { buffer: ArrayBuffer };
const sip = instance.exports.sip as (len: number) => void;
const bytes = new Uint8Array(memory.buffer);
const words = new Uint32Array(memory.buffer);
let loadedKey: SipKey | undefined;

/**
 * SipHash-2-4 of `data[start, end)` into `out` as [hi, lo]; false (nothing done) when the input is
 * longer than WASM_MAX_INPUT.
 */
export function wasmSipHash(
  key: SipKey,
  data: Uint8Array,
  start: number,
  end: number,
  out: Uint32Array,
): boolean {
  const length = end - start;
  if (length > WASM_MAX_INPUT) return false;
  if (key !== loadedKey) {
    words[KEY_AT / 4] = key.k0lo;
    words[KEY_AT / 4 + 1] = key.k0hi;
    words[KEY_AT / 4 + 2] = key.k1lo;
    words[KEY_AT / 4 + 3] = key.k1hi;
    loadedKey = key;
  }
  // Short values byte by byte: cheaper than the view `set(subarray())` would allocate.
  if (length <= 64) {
    for (let k = 0; k < length; k++) bytes[DATA_AT + k] = data[start + k]!;
  } else {
    bytes.set(data.subarray(start, end), DATA_AT);
  }
  sip(length);
  out[0] = words[RESULT_AT / 4 + 1]!;
  out[1] = words[RESULT_AT / 4]!;
  return true;
}
