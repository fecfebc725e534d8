import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BYTE_EOS_ID,
  BYTE_VOCAB_SIZE,
  createByteTokenizer,
  type DataProviderError,
  isDataProviderError,
  loadHuggingFaceTokenizer,
} from '../src/index.js';
import { handMadeTokenizerJson, sampleText, tempDir } from './helpers.js';

describe('byte tokenizer', () => {
  const tok = createByteTokenizer();

  it('maps UTF-8 bytes to ids and declares 258 ids', () => {
    // 'aé' = 0x61, 0xC3 0xA9 in UTF-8.
    expect(Array.from(tok.encode('aé'))).toEqual([0x61, 0xc3, 0xa9]);
    expect(tok.info).toEqual({ id: 'psyche-byte-v1', kind: 'byte', vocabSize: 258, eosTokenId: 256 });
    expect(BYTE_VOCAB_SIZE).toBe(258);
  });

  it('round-trips arbitrary text and renders/skips specials', () => {
    const text = sampleText(5000, 3);
    expect(tok.decode(tok.encode(text))).toBe(text);
    const ids = [...Array.from(tok.encode('a')), BYTE_EOS_ID, ...Array.from(tok.encode('b'))];
    expect(tok.decode(ids)).toBe('a<|endoftext|>b');
    expect(tok.decode(ids, { skipSpecial: true })).toBe('ab');
  });

  it('rejects ids outside the vocabulary with a typed error naming the position', () => {
    try {
      tok.decode([97, 258]);
      expect.unreachable();
    } catch (e) {
      expect(isDataProviderError(e, 'TOKEN_OUT_OF_RANGE')).toBe(true);
      expect((e as DataProviderError).details.parameter).toBe('ids[1]');
    }
  });
});

describe('Hugging Face tokenizer.json', () => {
  const dir = tempDir();
  const path = join(dir, 'tokenizer.json');
  writeFileSync(path, JSON.stringify(handMadeTokenizerJson()));

  it('encodes with the merges of the file and finds <|endoftext|> as EOS', async () => {
    const tok = await loadHuggingFaceTokenizer(path);
    // merges: "Ġ t"→256, "Ġt h"→257, "Ġth e"→258; so "a the" = [a=97, Ġthe=258].
    expect(Array.from(tok.encode('a the'))).toEqual([97, 258]);
    expect(tok.info.vocabSize).toBe(260);
    expect(tok.info.eosTokenId).toBe(259);
    expect(tok.info.kind).toBe('huggingface');
    expect(tok.info.id).toMatch(/^hf:[0-9a-f]{16}$/);
    const text = 'the other theme\n  über';
    expect(tok.decode(tok.encode(text))).toBe(text);
  });

  it('gives a different id to a different file', async () => {
    const json = handMadeTokenizerJson();
    (json.model as { merges: string[] }).merges.pop();
    const other = join(dir, 'other.json');
    writeFileSync(other, JSON.stringify(json));
    const [a, b] = await Promise.all([loadHuggingFaceTokenizer(path), loadHuggingFaceTokenizer(other)]);
    expect(a.info.id).not.toBe(b.info.id);
  });

  it('throws typed errors for a missing file, bad JSON and an unknown eosToken', async () => {
    await expect(loadHuggingFaceTokenizer(join(dir, 'nope.json'))).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    const badPath = join(dir, 'bad.json');
    writeFileSync(badPath, '{not json');
    await expect(loadHuggingFaceTokenizer(badPath)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(loadHuggingFaceTokenizer(path, { eosToken: '<nope>' })).rejects.toMatchObject({
      code: 'INVALID_PARAMETER',
      details: { parameter: 'eosToken' },
    });
    const none = await loadHuggingFaceTokenizer(path, { eosToken: null });
    expect(none.info.eosTokenId).toBeNull();
  });
});
