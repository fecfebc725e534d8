// No vitest imports: also used by bench/run.ts.

/** GPT-2 byte→unicode table, for hand-made byte-level BPE tokenizer.json files. */
function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let i = 33; i <= 126; i++) bs.push(i);
  for (let i = 161; i <= 172; i++) bs.push(i);
  for (let i = 174; i <= 255; i++) bs.push(i);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out: string[] = new Array(256);
  bs.forEach((b, i) => {
    out[b] = String.fromCodePoint(cs[i]!);
  });
  return out;
}

/**
 * A hand-made byte-level BPE tokenizer.json: ids 0..255 are the bytes (via the GPT-2 table), then merges
 * `Ġ t`→256, `Ġt h`→257, `Ġth e`→258, and `<|endoftext|>` = 259. So " the" encodes to [258].
 */
export function handMadeTokenizerJson(): Record<string, unknown> {
  const b2u = bytesToUnicode();
  const vocab: Record<string, number> = {};
  for (let b = 0; b < 256; b++) vocab[b2u[b]!] = b;
  const merges = [
    ['Ġ', 't'],
    ['Ġt', 'h'],
    ['Ġth', 'e'],
  ] as const;
  let id = 256;
  for (const [a, b] of merges) vocab[a + b] = id++;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      {
        id,
        content: '<|endoftext|>',
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: merges.map((m) => m.join(' ')),
    },
  };
}
