/** Writes the bench's synthetic model in its own process, so the bench's peak RSS measures the engine only. */
import { writeSyntheticModel } from '../main/model/synthetic.ts';
import { SYNTH_125M } from './recipes.ts';

await writeSyntheticModel(process.argv[2], SYNTH_125M);
