import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { configToHfJson, createConfig, type DeepseekV2Config, parameterShapes } from './config.js';
import { MlaError } from './errors.js';
import { MlaModel } from './model.js';
import { parseSafetensors, safetensorsToFloat32, serializeSafetensors } from './safetensors.js';

/** Options of {@link saveHfCheckpoint}. */
export interface SaveCheckpointOptions {
  /** Storage dtype of `model.safetensors` (default `float32`). `bfloat16` rounds to nearest even. */
  readonly dtype?: 'float32' | 'bfloat16';
}

/** File names of an HF model directory. */
export const CONFIG_FILE = 'config.json';
/** File names of an HF model directory. */
export const WEIGHTS_FILE = 'model.safetensors';

async function atomicWrite(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/**
 * Saves a model as an HF-style directory: `config.json` (`DeepseekV2ForCausalLM`) and a single
 * `model.safetensors` with HF DeepSeek-V2 tensor names. Files are written atomically (temp file + rename).
 *
 * @example
 * ```ts
 * await saveHfCheckpoint(model, './ckpt', { dtype: 'bfloat16' });
 * const again = await loadHfCheckpoint('./ckpt');
 * ```
 * @throws {MlaError} `CHECKPOINT_IO` when the directory cannot be written.
 */
export async function saveHfCheckpoint(
  model: MlaModel,
  dir: string,
  options: SaveCheckpointOptions = {},
): Promise<void> {
  const dtype = options.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'bfloat16') {
    throw new MlaError('UNSUPPORTED_DTYPE', `options.dtype must be "float32" or "bfloat16", got ${dtype}`, {
      parameter: 'dtype',
    });
  }
  const weights = await model.readWeights();
  const tensors = parameterShapes(model.config).map(([name, shape]) => ({
    name,
    shape,
    data: weights.get(name)!,
  }));
  const bytes = serializeSafetensors(tensors, {
    dtype: dtype === 'float32' ? 'F32' : 'BF16',
    metadata: { format: 'pt' },
  });
  try {
    await mkdir(dir, { recursive: true });
    await atomicWrite(join(dir, WEIGHTS_FILE), bytes);
    await atomicWrite(
      join(dir, CONFIG_FILE),
      `${JSON.stringify(configToHfJson(model.config, dtype), null, 2)}\n`,
    );
  } catch (cause) {
    throw new MlaError(
      'CHECKPOINT_IO',
      `cannot write checkpoint to ${dir}: ${(cause as Error).message}`,
      { dir },
      { cause },
    );
  }
}

/**
 * Reads and validates an HF-style directory into a config and float32 weights (F32, BF16, F16 or F64 tensors).
 *
 * @throws {MlaError} `CHECKPOINT_IO` (missing/unreadable files), `INVALID_CONFIG`/`UNSUPPORTED_CONFIG` (bad
 *   `config.json`, naming the field), `MALFORMED_SAFETENSORS`, `MISSING_TENSOR`, `UNEXPECTED_TENSOR`,
 *   `SHAPE_MISMATCH`, `UNSUPPORTED_DTYPE` (naming the tensor).
 */
export async function readHfCheckpoint(
  dir: string,
): Promise<{ config: DeepseekV2Config; weights: Map<string, Float32Array> }> {
  let configText: string;
  let bytes: Uint8Array;
  try {
    configText = await readFile(join(dir, CONFIG_FILE), 'utf8');
    bytes = await readFile(join(dir, WEIGHTS_FILE));
  } catch (cause) {
    throw new MlaError(
      'CHECKPOINT_IO',
      `cannot read checkpoint from ${dir}: ${(cause as Error).message}`,
      { dir },
      { cause },
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(configText);
  } catch (cause) {
    throw new MlaError(
      'INVALID_CONFIG',
      `${CONFIG_FILE} is not valid JSON`,
      { file: CONFIG_FILE },
      { cause },
    );
  }
  const config = createConfig(raw as Record<string, unknown>);
  const file = parseSafetensors(bytes);
  const expected = new Map(parameterShapes(config));
  for (const name of file.tensors.keys()) {
    if (!expected.has(name)) {
      throw new MlaError(
        'UNEXPECTED_TENSOR',
        `${WEIGHTS_FILE} has tensor "${name}" the config does not define`,
        {
          tensor: name,
        },
      );
    }
  }
  const weights = new Map<string, Float32Array>();
  for (const [name, shape] of expected) {
    const t = file.tensors.get(name);
    if (t === undefined) {
      throw new MlaError('MISSING_TENSOR', `${WEIGHTS_FILE} lacks tensor "${name}"`, { tensor: name });
    }
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new MlaError(
        'SHAPE_MISMATCH',
        `tensor "${name}" has shape ${JSON.stringify(t.shape)}, config implies ${JSON.stringify(shape)}`,
        { tensor: name, got: t.shape, expected: shape },
      );
    }
    weights.set(name, safetensorsToFloat32(t, name));
  }
  return { config, weights };
}

/**
 * Loads an HF-style DeepSeek-V2 directory (`config.json` + `model.safetensors`) into a new {@link MlaModel}.
 * See {@link readHfCheckpoint} for the validation performed.
 */
export async function loadHfCheckpoint(dir: string): Promise<MlaModel> {
  const { config, weights } = await readHfCheckpoint(dir);
  return MlaModel.fromWeights(config, weights);
}
