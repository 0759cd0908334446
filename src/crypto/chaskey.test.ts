import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chaskeyHex, chaskeyHexInto, chaskeyKey, chaskeyTag } from './chaskey.js';

/** A tag's 16 bytes as its four little-endian words in hex, the way the reference lists them. */
const words = (tag: Buffer): string =>
  [0, 4, 8, 12].map((i) => tag.readUInt32LE(i).toString(16).padStart(8, '0')).join(' ');

const wordsKey = (ws: number[]): Buffer => {
  const b = Buffer.alloc(16);
  for (const [i, w] of ws.entries()) b.writeUInt32LE(w, 4 * i);
  return b;
};

// The message of length n is the bytes 00 01 … (n-1); lengths 0–63 give every tail length (0–15
// bytes after the last whole block), a message of whole blocks (the first subkey) and the empty one.
const MESSAGE = Uint8Array.from({ length: 64 }, (_, i) => i);

// Chaskey (8 rounds): the reference implementation's 64 vectors, full 16-byte tags as 32-bit words,
// under its key 833d3433 009f389f 2398e64f 417acf39. The same code with 12 rounds is Chaskey-12.
const CHASKEY_8 = [
  '792e8fe5 75ce87aa 2d1450b5 1191970b',
  '13a9307b 50e62c89 4577bd88 c0bbdc18',
  '55df8922 2c7ff577 73809ef4 4e5084c0',
  '1bdbb264 a07680d8 8e5b2ab8 20660413',
  '30b2d171 e38532fb 16707c16 73ed45f0',
  'bc983d0c 31b14064 234cd7a2 0c92bbf9',
  '0dd0688a e131756c 94c5e6de 84942131',
  '7f670454 f25b03e0 19d68362 9f4d24d8',
  '09330f69 62b5dce0 a4fba462 f20d3c12',
  '89b3b1be 95b97392 f8444abf 755dadfe',
  'ac5b9dae 6cf8c0ac 56e7b945 d7ecf8f0',
  'd5b0dbec c1692530 d13b368a c0ae6a59',
  'fc2c3391 285c8cd5 456508ee c789e206',
  '29496f33 ac62d558 e0bad605 c5a538c6',
  'bf668497 275217a1 40c17ad4 2ed877c0',
  '51b94da4 efcc4de8 192412ea bbc170dd',
  '79271ca9 d66a1c71 81ca474e 49831cad',
  '048da968 4e25d096 2d6cf897 bc3959ca',
  '0c45d380 2fd09996 31f42f3b 8f7fd0bf',
  'd8153472 10c37b1e eebdd61d 7e3db1ee',
  'fa4ca543 0d75d71e af61e0cc 0d650c45',
  '808b1bca 7e034de0 6c8b597f 3faca725',
  'c7afa441 95a4efed c9a9664e a2309431',
  '36200641 2f8c1f4a 27f6a5de 469d29f9',
  '37ba1e35 43451a62 e6865591 19af78ee',
  '86b4f697 93a4f64f cbcbd086 b476bb28',
  'be7d2afa ac513de7 fc599337 5ea03e3a',
  'c56d7f54 3e286a58 79675a22 099c7599',
  '3d0f08ed f32e3fde bb8a1a8c c3a3fec4',
  '2ec171f8 33698309 78efd172 d764b98c',
  '5ceceeac a174084c 95c3a400 98bee220',
  'bbdd0c2d fab6fcd9 dccc080e 9f04b41f',
  '60b3f7af 37eee7c8 836cfd98 782ca060',
  'df44ea33 b0b2c398 0583ce6f 846d823e',
  'c7e31175 6db4e34d dad60ca1 e95aba60',
  'e0dc6938 84a0a7e3 b7f695b5 b46a010b',
  '1ceb6c66 3535f274 839dbc27 80b4599c',
  'bba106f4 d49b697c b454b5d9 2b69e58b',
  '5ad58a39 dfd52844 34973366 8f467ddc',
  '67a67b1f 3575ecb3 1c71b19d a885c92b',
  'd5abcc27 9114eff5 a094340e a457374b',
  'b559df49 dec9b2cf 0f97fe2b 5fa054d7',
  '2aca7229 99ff1b77 156d66e0 f7a55486',
  '565996fd 8f988cef 27dc2ce2 2f8ae186',
  'be473747 2590827b dc852399 2de46519',
  'f860ab7d 00f48c88 0abfbb33 91ea1838',
  'de15c7e1 1d90eff8 abc70129 d9b2f0b4',
  'b3f0a2c3 775539a7 6caa3bc1 d5a6fc7e',
  '127c6e21 6c07a459 ad851388 22e8bf5b',
  '08f3f132 57b587e3 087ad505 fa070c27',
  'a826e824 3f851e6a 9d1f2276 7962ad37',
  '14a6a13a 469962fd 914db278 3a9e8ec2',
  'fe20ddf7 06505229 f9c9f394 4361a98d',
  '1de7a33c 37f81c96 d9b967be c00fa4fa',
  '5fd01e9a 9f2e486d 93205409 814d7cc2',
  'e17f5ca5 37d4bdd0 1f408335 43b6b603',
  '817ceeae 796c9ec0 1bb3ded7 bac7263b',
  'b7827e63 0988fea0 3800bd91 cf876b00',
  'f0248d4b aca7bdc8 739e30f3 e0c469c2',
  '67363eb6 fae8e047 f0c1c8e5 828ccd47',
  '3dbd1d15 05092d7b 216fc6e3 446860fb',
  'ebf39102 8f4c1708 519d2f36 c67c5437',
  '89a0d454 9201a282 ea1b1e50 1771bedc',
  '9047fad7 88136d8c a488286b 7fe9352c',
];

// Chaskey-12: the 12-round reference's vectors (first 8 tag bytes) under key 00 11 22 … ff.
const CHASKEY_12: Record<number, string> = {
  0: 'dd3e1849d6824555',
  1: 'ed1da89ec93179ca',
  2: '98fe20a343cd666f',
  3: 'f6f418acdd7d9fa1',
  11: '4d1a1815868a5aa8',
  12: '7a7912c1999eae81',
  15: '6a3ee3d35c043397',
  16: 'd13970d7be9b2350',
  17: '32acd914bfda3bc8',
  31: 'fd42c39d08ab71a0',
  32: 'b465c2412610bf84',
  33: '89c4a9ddb53e6991',
  47: '6dfaa705a8a06c70',
  48: 'aa047f07c5ae8db4',
  63: 'fc7f9df7991b87bc',
};

describe('Chaskey-12', () => {
  it('matches the reference vectors of Chaskey (8 rounds) for every length 0–63', () => {
    const key = chaskeyKey(wordsKey([0x833d3433, 0x009f389f, 0x2398e64f, 0x417acf39]));
    CHASKEY_8.forEach((expected, n) => {
      assert.equal(words(chaskeyTag(key, MESSAGE, 0, n, 8)), expected, `length ${n}`);
    });
  });

  it('matches the reference vectors of Chaskey-12, as tags and as hex', () => {
    const key = chaskeyKey(Buffer.from('00112233445566778899aabbccddeeff', 'hex'));
    for (const [n, expected] of Object.entries(CHASKEY_12)) {
      assert.equal(
        chaskeyTag(key, MESSAGE, 0, Number(n)).subarray(0, 8).toString('hex'),
        expected,
        `length ${n}`,
      );
      assert.equal(chaskeyHex(key, MESSAGE, 0, Number(n)), expected);
    }
  });

  it('reads a range in place, anywhere in a buffer, and writes the hex where asked', () => {
    const key = chaskeyKey(Buffer.from('00112233445566778899aabbccddeeff', 'hex'));
    const shifted = Buffer.concat([Buffer.from('xyz'), MESSAGE, Buffer.from('!')]);
    assert.equal(chaskeyHex(key, shifted, 3, 3 + 33), CHASKEY_12[33]);
    const dst = Buffer.alloc(20, '.');
    chaskeyHexInto(key, shifted, 3, 3 + 17, dst, 2);
    assert.equal(dst.toString(), `..${CHASKEY_12[17]}..`);
  });

  it('refuses a key that is not 16 bytes, and a round count it does not run', () => {
    assert.throws(() => chaskeyKey(new Uint8Array(15)), /16-byte key, got 15/);
    const key = chaskeyKey(new Uint8Array(16));
    assert.throws(() => chaskeyTag(key, MESSAGE, 0, 3, 6), /multiple of 4, got 6/);
  });
});
