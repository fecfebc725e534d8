/**
 * An independent, deliberately naive float64 re-statement of HF `DeepseekV2ForCausalLM.forward` (dense layers,
 * eager attention), written from the equations with plain loops: used to check the tfjs implementation.
 */
import type { DeepseekV2Config } from '../src/index.js';

type W = ReadonlyMap<string, Float32Array>;

/** y = W·x for a PyTorch-layout weight `[out, in]`. */
function matvec(w: Float32Array, x: number[], out: number): number[] {
  const inn = x.length;
  const y = new Array<number>(out).fill(0);
  for (let o = 0; o < out; o++) {
    let s = 0;
    for (let i = 0; i < inn; i++) s += w[o * inn + i]! * x[i]!;
    y[o] = s;
  }
  return y;
}

function rms(x: number[], w: Float32Array, eps: number): number[] {
  const ms = x.reduce((a, v) => a + v * v, 0) / x.length;
  const inv = 1 / Math.sqrt(ms + eps);
  return x.map((v, i) => v * inv * w[i]!);
}

/** HF `apply_rotary_pos_emb` for DeepSeek-V2: de-interleave, then `y·cos + rotate_half(y)·sin`. */
function rope(x: number[], pos: number, theta: number): number[] {
  const d = x.length;
  const y = [...x.filter((_, i) => i % 2 === 0), ...x.filter((_, i) => i % 2 === 1)];
  const freqs = Array.from({ length: d / 2 }, (_, i) => pos / theta ** ((2 * i) / d));
  const emb = [...freqs, ...freqs];
  const rotated = [...y.slice(d / 2).map((v) => -v), ...y.slice(0, d / 2)];
  return y.map((v, i) => v * Math.cos(emb[i]!) + rotated[i]! * Math.sin(emb[i]!));
}

/** Logits `[T][V]` for one sequence. */
export function referenceForward(c: DeepseekV2Config, w: W, tokens: number[]): number[][] {
  const g = (n: string) => {
    const t = w.get(n);
    if (!t) throw new Error(`reference: missing ${n}`);
    return t;
  };
  const D = c.hidden_size;
  const H = c.num_attention_heads;
  const { qk_nope_head_dim: dn, qk_rope_head_dim: dr, v_head_dim: dv, kv_lora_rank: r } = c;
  const dq = dn + dr;
  const T = tokens.length;
  const emb = g('model.embed_tokens.weight');
  let h = tokens.map((id) => Array.from(emb.subarray(id * D, (id + 1) * D)));
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    const xs = h.map((v) => rms(v, g(`${p}.input_layernorm.weight`), c.rms_norm_eps));
    const qs = xs.map((x) =>
      c.q_lora_rank === null
        ? matvec(g(`${p}.self_attn.q_proj.weight`), x, H * dq)
        : matvec(
            g(`${p}.self_attn.q_b_proj.weight`),
            rms(
              matvec(g(`${p}.self_attn.q_a_proj.weight`), x, c.q_lora_rank),
              g(`${p}.self_attn.q_a_layernorm.weight`),
              c.rms_norm_eps,
            ),
            H * dq,
          ),
    );
    const ckv = xs.map((x) => matvec(g(`${p}.self_attn.kv_a_proj_with_mqa.weight`), x, r + dr));
    const kpe = ckv.map((v, t) => rope(v.slice(r), t, c.rope_theta));
    const kv = ckv.map((v) =>
      matvec(
        g(`${p}.self_attn.kv_b_proj.weight`),
        rms(v.slice(0, r), g(`${p}.self_attn.kv_a_layernorm.weight`), c.rms_norm_eps),
        H * (dn + dv),
      ),
    );
    const attnOut = xs.map(() => new Array<number>(H * dv).fill(0));
    for (let head = 0; head < H; head++) {
      for (let t = 0; t < T; t++) {
        const q = qs[t]!.slice(head * dq, (head + 1) * dq);
        const qNope = q.slice(0, dn);
        const qPe = rope(q.slice(dn), t, c.rope_theta);
        const scores: number[] = [];
        for (let s = 0; s <= t; s++) {
          const kNope = kv[s]!.slice(head * (dn + dv), head * (dn + dv) + dn);
          let dot = 0;
          for (let i = 0; i < dn; i++) dot += qNope[i]! * kNope[i]!;
          for (let i = 0; i < dr; i++) dot += qPe[i]! * kpe[s]![i]!;
          scores.push(dot / Math.sqrt(dq));
        }
        const m = Math.max(...scores);
        const e = scores.map((v) => Math.exp(v - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let s = 0; s <= t; s++) {
          const v = kv[s]!.slice(head * (dn + dv) + dn, (head + 1) * (dn + dv));
          for (let i = 0; i < dv; i++) attnOut[t]![head * dv + i]! += (e[s]! / z) * v[i]!;
        }
      }
    }
    h = h.map((v, t) => {
      const o = matvec(g(`${p}.self_attn.o_proj.weight`), attnOut[t]!, D);
      return v.map((x, i) => x + o[i]!);
    });
    h = h.map((v) => {
      const x = rms(v, g(`${p}.post_attention_layernorm.weight`), c.rms_norm_eps);
      const gate = matvec(g(`${p}.mlp.gate_proj.weight`), x, c.intermediate_size);
      const up = matvec(g(`${p}.mlp.up_proj.weight`), x, c.intermediate_size);
      const act = gate.map((a, i) => (a / (1 + Math.exp(-a))) * up[i]!);
      const down = matvec(g(`${p}.mlp.down_proj.weight`), act, D);
      return v.map((x0, i) => x0 + down[i]!);
    });
  }
  const head = c.tie_word_embeddings ? g('model.embed_tokens.weight') : g('lm_head.weight');
  return h.map((v) => matvec(head, rms(v, g('model.norm.weight'), c.rms_norm_eps), c.vocab_size));
}
