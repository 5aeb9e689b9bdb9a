import { fileURLToPath } from 'node:url';

/** The project's own texts (assets/demo), so the demo needs no download: one to calibrate, one to evaluate. */
export const DEMO_TEXT_PATH = fileURLToPath(new URL('../../assets/demo/calibration.txt', import.meta.url));
export const DEMO_EVAL_PATH = fileURLToPath(new URL('../../assets/demo/evaluation.txt', import.meta.url));
