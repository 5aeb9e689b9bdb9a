import { fileURLToPath } from 'node:url';

/**
 * The model shipped with Rankwise: Karpathy's stories260K (MIT, assets/stories260K/LICENSE), a real
 * Llama-architecture model trained on TinyStories (~1 MB), so the demo and the wizard's default need no
 * download. Rankwise reads it in place and never writes there.
 */
export const BUNDLED_MODEL_DIR = fileURLToPath(new URL('../../assets/stories260K', import.meta.url));
export const BUNDLED_MODEL_NAME = 'stories260K';
